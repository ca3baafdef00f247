//! `visage cluster` and `visage eval clusters` against scikit-learn fixtures
//! (scripts/reference/eval_fixtures.py), through the `visage` binary.

mod eval_common;
use eval_common::*;

#[test]
fn cluster_metrics_match_reference() {
    let got = json(&[
        "eval",
        "clusters",
        "--truth",
        fixture("metrics_truth.txt").to_str().unwrap(),
        "--pred",
        fixture("metrics_pred.txt").to_str().unwrap(),
        "--json",
    ]);
    assert_json_close(&got, &read_json(&fixture("metrics.expected.json")), 1e-12, "metrics");
    for key in ["pairwise_precision", "pairwise_recall", "pairwise_f", "bcubed_precision", "bcubed_recall", "bcubed_f", "nmi"] {
        assert!(got.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn cluster_metrics_refuse_mismatched_lengths() {
    let err = run(&[
        "eval",
        "clusters",
        "--truth",
        fixture("metrics_truth.txt").to_str().unwrap(),
        "--pred",
        fixture("cluster_truth.txt").to_str().unwrap(),
    ])
    .unwrap_err();
    assert_eq!(err.0, 2);
    assert!(err.1.contains("cluster_truth.txt") && err.1.contains("labels"), "{}", err.1);
}

fn cluster_to_file(name: &str, input: &str, args: &[String]) -> Vec<i64> {
    let out = std::env::temp_dir().join(format!("visage-eval-{}-{name}.txt", std::process::id()));
    let mut full: Vec<&str> = vec!["cluster", "--input", input, "--output", out.to_str().unwrap()];
    full.extend(args.iter().map(String::as_str));
    run(&full).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    read_label_file(&out)
}

#[test]
fn dbscan_and_ahc_partitions_equal_scikit_learn() {
    let cases = read_json(&fixture("cluster_cases.json"));
    let input = fixture("cluster_x.npy");
    for (name, args) in cases["cases"].as_object().unwrap() {
        let args: Vec<String> = args.as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
        let got = cluster_to_file(name, input.to_str().unwrap(), &args);
        let want = read_label_file(&fixture(&format!("cluster_{name}.txt")));
        assert_same_partition(&got, &want, name);
    }
}

#[test]
fn kmeans_partition_equals_scikit_learn() {
    let input = fixture("kmeans_x.npy");
    let args: Vec<String> = ["--method", "kmeans", "--metric", "cosine", "--k", "12"].iter().map(|s| s.to_string()).collect();
    let got = cluster_to_file("kmeans", input.to_str().unwrap(), &args);
    let want = read_label_file(&fixture("cluster_kmeans_cosine.txt"));
    assert_same_partition(&got, &want, "kmeans");
    // (the objective against scikit-learn's inertia: visage-eval's tests/library_reference.rs)
}

#[test]
fn cluster_option_errors_exit_2() {
    let input = fixture("cluster_x.npy");
    let out = std::env::temp_dir().join("visage-eval-unused.txt");
    let err = run(&["cluster", "--method", "dbscan", "--input", input.to_str().unwrap(), "--output", out.to_str().unwrap()]).unwrap_err();
    assert_eq!(err.0, 2);
    assert!(err.1.contains("--eps"));
    let err = run(&[
        "cluster",
        "--method",
        "kmeans",
        "--input",
        fixture("verify_pairs.txt").to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--k",
        "2",
    ])
    .unwrap_err();
    assert_eq!(err.0, 2, "{}", err.1);
    assert!(err.1.contains("verify_pairs.txt:2:"), "{}", err.1);
}

#[test]
fn magnitude_report_is_written() {
    let input = fixture("cluster_x.npy");
    let out = std::env::temp_dir().join(format!("visage-eval-{}-mag-labels.txt", std::process::id()));
    let report = std::env::temp_dir().join(format!("visage-eval-{}-mag.json", std::process::id()));
    run(&[
        "cluster",
        "--method",
        "dbscan",
        "--metric",
        "cosine",
        "--eps",
        "0.25",
        "--min-samples",
        "5",
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--magnitude-report",
        report.to_str().unwrap(),
    ])
    .unwrap();
    let r = read_json(&report);
    let clusters = r["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 12);
    let mags: Vec<f64> = clusters[0]["magnitudes"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(mags.windows(2).all(|w| w[0] >= w[1]), "members not ordered by magnitude");
}
