//! The accuracy guard: the default chain, as `visage analyze`
//! runs it, on the shared real photo sets must not fall below the figures
//! recorded in docs/accuracy.md. Runs `visage bench accuracy` through the
//! binary; fails (never skips) when ../shared/data is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// (set, AUC, TAR@FAR 1e-3, identified/members, analyze pairwise F,
/// quality FNMR cut): floors a little under docs/accuracy.md's default row,
/// so a change that loses accuracy fails while run-to-run noise (there is
/// none: the chain is deterministic) cannot.
type Floor = (&'static str, f64, f64, (u64, u64), f64, f64);
const FLOORS: [Floor; 4] = [
    ("faces", 0.9999, 0.999, (4, 4), 0.999, 0.0),
    ("faces_small", 0.9999, 0.999, (4, 4), 0.999, 0.0),
    ("faces_dev.a", 0.994, 0.96, (6, 6), 0.96, 0.40),
    ("faces_dev.b", 0.992, 0.91, (6, 6), 0.95, 0.75),
];

#[test]
fn default_chain_keeps_its_recorded_accuracy() {
    let data = shared_data();
    assert!(data.join("faces_dev").is_dir(), "{}: the shared photo sets are missing", data.display());
    let json = std::env::temp_dir().join(format!("visage-accuracy-guard-{}.json", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(["bench", "accuracy", "--chains", "default", "--sets", "faces,faces_small,faces_dev.a,faces_dev.b", "--data"])
        .arg(&data)
        .arg("--json")
        .arg(&json)
        .env_remove("VISAGE_MODELS_DIR")
        .output()
        .expect("visage runs");
    assert!(output.status.success(), "bench accuracy failed: {}", String::from_utf8_lossy(&output.stderr));
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let sets = &results[0]["sets"];
    let mut failures = Vec::new();
    for (set, auc, tar, (identified, members), f, quality) in FLOORS {
        let s = &sets[set];
        let got = |key: &str| s[key].as_f64().unwrap_or_else(|| panic!("{set}: no {key} in {s}"));
        assert_eq!(got("found"), got("photos"), "{set}: the default chain must find a face in every labelled photo");
        for (name, value, floor) in [
            ("auc", got("auc"), auc),
            ("tar_at_far_1e3", got("tar_at_far_1e3"), tar),
            ("analyze_f", got("analyze_f"), f),
            ("quality_fnmr_cut", got("quality_fnmr_cut"), quality),
        ] {
            if value < floor {
                failures.push(format!("{set}: {name} {value:.4} < {floor}"));
            }
        }
        if got("identified") < identified as f64 || got("members") != members as f64 {
            failures.push(format!("{set}: identified {}/{} (recorded {identified}/{members})", got("identified"), got("members")));
        }
        // A threshold judged on a set is never chosen on it.
        assert_ne!(s["threshold_from"].as_str().unwrap(), set, "{set}: threshold calibrated in-sample");
    }
    assert!(failures.is_empty(), "accuracy fell below docs/accuracy.md:\n{}", failures.join("\n"));
}
