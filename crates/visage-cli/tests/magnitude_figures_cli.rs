//! MagFace's figures through the real binary on the bundled photos
//! (examples/photos, models/): `visage eval magnitude-figures` and the
//! figures in `visage analyze`'s report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn visage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage")).args(args).env_remove("VISAGE_MODELS_DIR").output().expect("visage runs")
}

fn photos() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/photos").display().to_string()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-magnitude-figures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every face index in exactly one bin; the bins' counts, their lists of faces and `face_bins` agree.
fn assert_bins_partition(figures: &serde_json::Value, faces: usize) {
    let bins = figures["bins"].as_array().unwrap();
    let mut seen = vec![0usize; faces];
    for (b, bin) in bins.iter().enumerate() {
        let members = bin["faces"].as_array().unwrap();
        assert_eq!(bin["count"].as_u64().unwrap() as usize, members.len());
        for f in members {
            let f = f.as_u64().unwrap() as usize;
            seen[f] += 1;
            assert_eq!(figures["face_bins"][f].as_u64(), Some(b as u64), "face {f}");
        }
    }
    assert!(seen.iter().all(|&n| n == 1), "each face in exactly one bin: {seen:?}");
    assert_eq!(bins.iter().map(|b| b["count"].as_u64().unwrap() as usize).sum::<usize>(), faces);
}

#[test]
fn eval_magnitude_figures_on_the_bundled_photos() {
    let out = scratch("figures");
    let run = visage(&["eval", "magnitude-figures", &photos(), "--out", out.to_str().unwrap(), "--json"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let written = json(&out.join("magnitude_figures.json"));
    let printed: serde_json::Value = serde_json::from_str(&text(&run.stdout)).unwrap();
    assert_eq!(written, printed, "--json prints what the file holds");
    assert_eq!(written["photos"], 19);
    // The faces found: 21 of the 5 people and 3 blurred background faces.
    let faces = written["faces"].as_array().unwrap().len();
    assert_eq!(faces, 24);
    let figures = &written["figures"];
    assert_eq!(figures["bins"].as_array().unwrap().len(), 8, "8 bins by default");
    assert_bins_partition(figures, faces);
    // Each bin's mean magnitude lies inside its range, and the ranges increase.
    for bin in figures["bins"].as_array().unwrap() {
        let mean = bin["mean_magnitude"].as_f64().unwrap();
        assert!(bin["lower"].as_f64().is_none_or(|l| mean >= l) && bin["upper"].as_f64().is_none_or(|u| mean < u), "{bin}");
    }
    for key in ["centre_cosine", "knn_confidence"] {
        let c = &figures[key];
        assert_eq!(c["values"].as_array().unwrap().len(), faces, "{key}");
        let rho = c["spearman_rho"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&rho), "{key}: {rho}");
    }
    assert_eq!(figures["knn_confidence"]["faces"].as_u64().unwrap() as usize, faces);
    // 8 tiles of 112 px in a row with 8 px gaps; the scatter chart at the chart size.
    let row = image::open(out.join("mean_faces.png")).unwrap();
    assert_eq!((row.width(), row.height()), (8 + 8 * 120, 8 + 18 + 112 + 2 * 18 + 8));
    let scatter = image::open(out.join("magnitude_centrality.png")).unwrap();
    assert_eq!((scatter.width(), scatter.height()), (900, 620));

    // The same faces under given edges and given labels (here: the persons found).
    let labels = scratch("labels.txt");
    let clusters: Vec<String> = written["faces"].as_array().unwrap().iter().map(|f| f["cluster"].to_string()).collect();
    std::fs::write(&labels, clusters.join("\n") + "\n").unwrap();
    let again = scratch("figures_edges");
    let run = visage(&[
        "eval",
        "magnitude-figures",
        &photos(),
        "--out",
        again.to_str().unwrap(),
        "--edges",
        "20,25,30",
        "--labels",
        labels.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let table = text(&run.stdout);
    assert!(table.starts_with("bin\trange\tcount\tmean_magnitude\n0\t< 20\t"), "{table}");
    let edged = json(&again.join("magnitude_figures.json"));
    assert_eq!(edged["figures"]["edges"], serde_json::json!([20.0, 25.0, 30.0]));
    assert_bins_partition(&edged["figures"], faces);
    for (f, face) in edged["faces"].as_array().unwrap().iter().enumerate() {
        let m = face["magnitude"].as_f64().unwrap();
        let bin = [20.0, 25.0, 30.0].iter().filter(|&&e| e <= m).count() as u64;
        assert_eq!(edged["figures"]["face_bins"][f].as_u64(), Some(bin), "face {f}, ‖x‖ {m}");
    }
    // Same clusters given as labels: the same centrality numbers.
    assert_eq!(edged["figures"]["centre_cosine"], figures["centre_cosine"]);
    assert_eq!(edged["figures"]["knn_confidence"], figures["knn_confidence"]);
}

#[test]
fn bad_edges_and_labels_are_refused() {
    let out = scratch("refused");
    let run = visage(&["eval", "magnitude-figures", &photos(), "--out", out.to_str().unwrap(), "--edges", "30,20"]);
    assert_eq!(run.status.code(), Some(2), "{}", text(&run.stderr));
    assert!(text(&run.stderr).contains("must increase strictly: 30 then 20"), "{}", text(&run.stderr));
    let labels = scratch("three_labels.txt");
    std::fs::write(&labels, "0\n1\n2\n").unwrap();
    let run = visage(&["eval", "magnitude-figures", &photos(), "--out", out.to_str().unwrap(), "--labels", labels.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2), "{}", text(&run.stderr));
    assert!(text(&run.stderr).contains("3 labels, but the photos gave 24 faces"), "{}", text(&run.stderr));
}

#[test]
fn analyze_report_and_summary_carry_both_figures() {
    let (report, summary) = (scratch("report.html"), scratch("summary.json"));
    let run = visage(&["analyze", &photos(), "--report", report.to_str().unwrap(), "--json", summary.to_str().unwrap(), "--bins", "6"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<h3>Mean face per magnitude bin</h3>"), "mean-face figure");
    assert!(html.contains("alt=\"mean face per magnitude bin\" style=\"max-width:100%\" src=\"data:image/png;base64,"), "inlined");
    assert!(html.contains("<h3>Magnitude against centrality in the person</h3>"), "centrality figure");
    assert!(html.contains("Cosine to cluster centre: Spearman ρ") && html.contains("kNN confidence (k = 5)"), "both panels");
    assert!(html.contains("6 bins of equal counts"), "--bins reaches the report");
    let summary = json(&summary);
    let faces = summary["faces"].as_array().unwrap().len();
    let figures = &summary["magnitude_figures"];
    assert_eq!(figures["bins"].as_array().unwrap().len(), 6);
    assert_bins_partition(figures, faces);
    assert_eq!(figures["clusters"], "persons found by visage analyze");
}
