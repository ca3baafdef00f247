//! `visage eval roc` against the shared worked example and scikit-learn
//! fixtures (scripts/reference/eval_fixtures.py), plus bad-input handling,
//! through the `visage` binary.

mod eval_common;
use eval_common::*;

#[test]
fn matches_the_shared_roc_small_example() {
    let csv = shared_example("roc_small.csv");
    let got = json(&["eval", "roc", "--scores", csv.to_str().unwrap(), "--json"]);
    let want = read_json(&shared_example("roc_small.expected.json"));
    assert_json_close(&got, &want, 1e-12, "roc_small");
}

#[test]
fn matches_scikit_learn_on_generated_scores() {
    for name in ["roc_ties", "roc_continuous", "roc_imbalanced"] {
        let csv = fixture(&format!("{name}.csv"));
        let got = json(&["eval", "roc", "--scores", csv.to_str().unwrap(), "--json"]);
        let want = read_json(&fixture(&format!("{name}.expected.json")));
        assert_json_close(&got, &want, 1e-9, name);
    }
}

#[test]
fn custom_far_list() {
    let csv = fixture("roc_ties.csv");
    let got = json(&["eval", "roc", "--scores", csv.to_str().unwrap(), "--far", "1e-3,0.1", "--json"]);
    let fars: Vec<f64> = got["tar_at_far"].as_array().unwrap().iter().map(|t| t["far"].as_f64().unwrap()).collect();
    assert_eq!(fars, vec![1e-3, 0.1]);
    let want = read_json(&fixture("roc_ties.expected.json"));
    assert_close(got["tar_at_far"][1]["tar"].as_f64().unwrap(), want["tar_at_far"][5]["tar"].as_f64().unwrap(), 1e-12, "tar@0.1");
}

fn bad_input(content: &str) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("visage-eval-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("case{}.csv", content.len()));
    std::fs::write(&path, content).unwrap();
    let err = run(&["eval", "roc", "--scores", path.to_str().unwrap(), "--json"]).expect_err("must fail");
    assert!(err.1.contains(path.to_str().unwrap()), "error does not name the file: {}", err.1);
    err
}

#[test]
fn bad_inputs_name_file_and_line_and_exit_2() {
    let (code, msg) = bad_input("");
    assert_eq!(code, 2);
    assert!(msg.contains("empty file"), "{msg}");
    let (code, msg) = bad_input("score;label\n0.1;1\n");
    assert_eq!(code, 2);
    assert!(msg.contains(":1:") && msg.contains("header"), "{msg}");
    let (code, msg) = bad_input("score,label\n0.1,1\nabc,0\n");
    assert_eq!(code, 2);
    assert!(msg.contains(":3:") && msg.contains("expected a number"), "{msg}");
    let (code, msg) = bad_input("score,label\n0.1,1\nNaN,0\n0.2,0\n");
    assert_eq!(code, 2);
    assert!(msg.contains(":3:") && msg.contains("NaN"), "{msg}");
    let (code, msg) = bad_input("score,label\n0.1,1\n0.3,1\n");
    assert_eq!(code, 2);
    assert!(msg.contains("only genuine"), "{msg}");
    let (code, msg) = bad_input("score,label\n0.1,1\n0.3,2\n");
    assert_eq!(code, 2);
    assert!(msg.contains(":3:") && msg.contains("0 or 1"), "{msg}");
    let (code, msg) = bad_input("score,label\n0.1,1,7\n");
    assert_eq!(code, 2);
    assert!(msg.contains(":2:") && msg.contains("2 comma-separated fields"), "{msg}");
    let (code, msg) = bad_input("score,label\n");
    assert_eq!(code, 2);
    assert!(msg.contains("no pairs"), "{msg}");
}

#[test]
fn missing_file_exits_2() {
    let err = run(&["eval", "roc", "--scores", "/nonexistent/scores.csv"]).unwrap_err();
    assert_eq!(err.0, 2);
    assert!(err.1.contains("/nonexistent/scores.csv"));
}

/// The contract as a script sees it: JSON on stdout, exit 2 and the file and
/// line on stderr.
#[test]
fn binary_roc_and_exit_code() {
    let csv = fixture("roc_ties.csv");
    let (code, stdout, stderr) = run_binary(&["eval", "roc", "--scores", csv.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let got: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_json_close(&got, &read_json(&fixture("roc_ties.expected.json")), 1e-9, "binary roc_ties");
    let bad = fixture("metrics_truth.txt"); // not a scores CSV
    let (code, _, stderr) = run_binary(&["eval", "roc", "--scores", bad.to_str().unwrap(), "--json"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("metrics_truth.txt:1:"), "{stderr}");
}
