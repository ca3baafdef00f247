//! `visage model info`, through the real binary.

use std::process::{Command, Output};

fn visage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage")).args(args).output().expect("visage runs")
}

#[test]
fn info_json_has_integer_params_and_flops() {
    let out = visage(&["model", "info", "iresnet50", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // PyTorch's count (scripts/reference/backbones_reference.py) and ptflops' total.
    assert_eq!(info["params"].as_u64(), Some(43_590_848));
    assert_eq!(info["flops"].as_u64(), Some(6_329_954_816));
    assert_eq!(info["macs"].as_u64(), Some(6_309_330_944));
    assert_eq!(info["arch"], "iresnet50");
    assert_eq!(info["input_shape"], serde_json::json!([1, 3, 112, 112]));
    assert_eq!(info["feature_dim"], 512);
}

#[test]
fn info_table_and_options() {
    let out = visage(&["model", "info", "mbf", "--embedding-size", "128"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("mobilefacenet"), "{text}");
    assert!(text.contains("1862144"), "{text}");
    assert!(text.contains("feature dim   128"), "{text}");
}

#[test]
fn unknown_arch_and_misplaced_layout_exit_2_naming_the_problem() {
    let out = visage(&["model", "info", "resnet9"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("resnet9") && stderr.contains("iresnet50"), "{stderr}");
    let out = visage(&["model", "info", "mbf", "--layout", "adaface"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("layout"));
}
