//! The `visage heads` contract, through the real binary.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn visage(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("visage runs");
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn eval_stdin(case: &str) -> Output {
    visage(&["heads", "eval", "--input", "-"], Some(case))
}

fn assert_bad_input(case: &str, mentions: &[&str]) {
    let out = eval_stdin(case);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit code for {case}: stderr {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout for bad input");
    for word in mentions {
        assert!(stderr.contains(word), "`{stderr}` should mention `{word}`");
    }
}

#[test]
fn eval_prints_loss_gradients_and_state() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../visage-heads/tests/fixtures/adaface_batch2.input.json");
    let out = visage(&["heads", "eval", "--input", fixture.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ours: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.to_str().unwrap().replace(".input.", ".expected.")).unwrap()).unwrap();
    let loss = ours["loss"].as_f64().unwrap();
    let reference = expected["loss"].as_f64().unwrap();
    assert!((loss - reference).abs() / reference < 1e-5, "{loss} vs {reference}");
    assert_eq!(ours["grad_embeddings"].as_array().unwrap().len(), expected["grad_embeddings"].as_array().unwrap().len());
    assert_eq!(ours["grad_weights"].as_array().unwrap().len(), expected["grad_weights"].as_array().unwrap().len());
    let mean = ours["state"]["batch_mean"].as_f64().unwrap();
    assert!((mean - expected["state"]["batch_mean"].as_f64().unwrap()).abs() < 1e-9);
}

#[test]
fn bad_cases_exit_2_naming_the_field() {
    let ok_rest = r#""embeddings": [[1, 2], [3, 1]], "weights": [[1, 0], [0, 1]], "labels": [0, 1]"#;
    assert_bad_input(&format!(r#"{{"head": {{"kind": "arcfase"}}, {ok_rest}}}"#), &["head.kind", "arcfase"]);
    assert_bad_input(&format!(r#"{{"head": {{"kind": "arcface", "margin": 0.5}}, {ok_rest}}}"#), &["head", "margin"]);
    assert_bad_input(
        r#"{"head": {"kind": "cosface"}, "embeddings": [[1, 2], [3]], "weights": [[1, 0]], "labels": [0, 0]}"#,
        &["embeddings[1]", "ragged"],
    );
    assert_bad_input(r#"{"head": {"kind": "cosface"}, "embeddings": [[1, 2, 3]], "weights": [[1, 0]], "labels": [0]}"#, &["weights", "3"]);
    assert_bad_input(
        r#"{"head": {"kind": "cosface"}, "embeddings": [[1, 2]], "weights": [[1, 0]], "labels": [0, 0]}"#,
        &["labels", "2 labels for 1 embeddings"],
    );
    assert_bad_input(r#"{"head": {"kind": "cosface"}, "embeddings": [[1, 2]], "weights": [[1, 0]], "labels": [1]}"#, &["labels[0]", "out of range"]);
    assert_bad_input(r#"{"head": {"kind": "cosface"}, "embeddings": [[1, 2]], "weights": [[1, 0]], "labels": [-1]}"#, &["labels[0]"]);
    assert_bad_input(r#"{"head": {"kind": "cosface"}, "embeddings": [[1, NaN]], "weights": [[1, 0]], "labels": [0]}"#, &["JSON"]);
    assert_bad_input(r#"{"head": {"kind": "cosface"}, "embeddings": [[1, "x"]], "weights": [[1, 0]], "labels": [0]}"#, &["embeddings[0][1]"]);
    assert_bad_input(
        r#"{"head": {"kind": "cosface"}, "embeddings": [[0, 0]], "weights": [[1, 0]], "labels": [0]}"#,
        &["embeddings row 0", "zero norm"],
    );
    assert_bad_input(
        r#"{"head": {"kind": "magface", "lambda_g": 10}, "embeddings": [[1, 2]], "weights": [[1, 0]], "labels": [0]}"#,
        &["lambda_g", "22.58"],
    );
    assert_bad_input(
        r#"{"head": {"kind": "arcface"}, "embeddings": [[1, 2]], "weights": [[1, 0]], "labels": [0], "state": {"batch_mean": 1, "batch_std": 2}}"#,
        &["state", "adaface"],
    );
    assert_bad_input(
        r#"{"head": {"kind": "subcenter", "k": 3}, "embeddings": [[1, 2]], "weights": [[1, 0], [0, 1]], "labels": [0]}"#,
        &["weights", "multiple of k = 3"],
    );
    // SV-AM-Softmax's t < 1 would weigh hard negatives less: refused.
    assert_bad_input(&format!(r#"{{"head": {{"kind": "svam", "t": 0.9}}, {ok_rest}}}"#), &["svam", "`t`", "0.9", "at least 1"]);
}

#[test]
fn svam_by_hand() {
    // x₁ = (3, 4), label 1: cos_y = 0.8, cos₀ = 0.6 > 0.8 − 0.35, a support vector:
    // logits 32·(1.2·0.6 + 0.2) = 29.44 and 32·(0.8 − 0.35) = 14.4.
    // x₂ = (1, 0), label 0: cos_y = 1, cos₁ = 0 < 0.65, not one: logits 32·0.65 = 20.8 and 0.
    let out = eval_stdin(r#"{"head": {"kind": "svam"}, "embeddings": [[3, 4], [1, 0]], "weights": [[1, 0], [0, 1]], "labels": [1, 0]}"#);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ce = |target: f64, other: f64| (target.exp() + other.exp()).ln() - target;
    let expected = (ce(14.4, 29.44) + ce(20.8, 0.0)) / 2.0;
    let loss = result["loss"].as_f64().unwrap();
    assert!((loss - expected).abs() < 1e-5 * expected, "loss {loss}, by hand {expected}");
}

#[test]
fn magface_check_passes_for_defaults_and_fails_below_the_bound() {
    let out = visage(&["heads", "magface-check", "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["monotone"], true);
    assert_eq!(report["all_conditions_hold"], true);
    let a_star: Vec<f64> = report["sweep"].as_array().unwrap().iter().map(|m| m["a_star"].as_f64().unwrap()).collect();
    assert_eq!(a_star.len(), 9);
    assert!(a_star.windows(2).all(|w| w[1] >= w[0] - 1e-6), "{a_star:?}");
    let out = visage(&["heads", "magface-check", "--lambda-g", "10"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("[FAIL] lambda_g >= s*K/(-g'(l_a))"));
}

#[test]
fn asking_for_cuda_without_it_is_a_clear_error() {
    let case = r#"{"head": {"kind": "cosface"}, "embeddings": [[1, 2]], "weights": [[1, 0], [0, 1]], "labels": [0]}"#;
    let out = visage(&["heads", "eval", "--input", "-", "--device", "cuda"], Some(case));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if cfg!(feature = "cuda") {
        return; // a GPU machine may run it; covered by visage-backend's probe test.
    }
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("without CUDA support"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn demo_runs_every_head() {
    let out = visage(&["heads", "demo"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for kind in ["softmax", "normface", "sphereface", "cosface", "arcface", "combined", "subcenter", "magface", "adaface", "svam"] {
        assert!(stdout.contains(&format!("  {kind} ")), "{kind} missing from:\n{stdout}");
    }
}
