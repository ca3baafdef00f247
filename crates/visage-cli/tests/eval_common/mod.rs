//! Helpers of the `visage eval …` / `visage cluster` tests: the built
//! `visage` binary run with arguments, visage-eval's reference fixtures and
//! the shared worked examples, and tolerant JSON comparison.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// A reference fixture of visage-eval (`crates/visage-eval/tests/fixtures`,
/// written by scripts/reference/eval_fixtures.py).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../visage-eval/tests/fixtures").join(name)
}

pub fn shared_example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/spec/examples").join(name)
}

/// Runs `visage <args>`: `Ok(stdout)` on exit 0, else the exit code and standard error.
pub fn run(args: &[&str]) -> Result<String, (i32, String)> {
    let (code, stdout, stderr) = run_binary(args);
    if code == 0 {
        Ok(stdout)
    } else {
        Err((code, stderr))
    }
}

pub fn json(args: &[&str]) -> serde_json::Value {
    let text = run(args).unwrap_or_else(|e| panic!("visage {args:?} failed: {e:?}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The exit code, standard output and standard error of `visage <args>`.
pub fn run_binary(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_visage")).args(args).output().expect("run visage");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

pub fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    assert!((got - want).abs() <= tol, "{what}: got {got}, want {want}");
}

/// Every numeric leaf of `want` equals the one at the same place in `got` to `tol`.
pub fn assert_json_close(got: &serde_json::Value, want: &serde_json::Value, tol: f64, path: &str) {
    use serde_json::Value;
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                let gv = g.get(k).unwrap_or_else(|| panic!("{path}.{k} missing in {got}"));
                assert_json_close(gv, wv, tol, &format!("{path}.{k}"));
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{path}: lengths");
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                assert_json_close(gv, wv, tol, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(g), Value::Number(w)) => assert_close(g.as_f64().unwrap(), w.as_f64().unwrap(), tol, path),
        _ => assert_eq!(got, want, "{path}"),
    }
}

pub fn read_label_file(path: &Path) -> Vec<i64> {
    std::fs::read_to_string(path).unwrap().lines().filter(|l| !l.trim().is_empty()).map(|l| l.trim().parse().unwrap()).collect()
}

/// Same partition: equal up to renaming clusters, noise (−1) exactly where the reference has it.
pub fn assert_same_partition(got: &[i64], want: &[i64], what: &str) {
    use std::collections::HashMap;
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let mut fwd: HashMap<i64, i64> = HashMap::new();
    let mut back: HashMap<i64, i64> = HashMap::new();
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g < 0, w < 0, "{what}: item {i} noise mismatch (got {g}, want {w})");
        if w < 0 {
            continue;
        }
        assert_eq!(*fwd.entry(w).or_insert(g), g, "{what}: item {i} splits reference cluster {w}");
        assert_eq!(*back.entry(g).or_insert(w), w, "{what}: item {i} merges into cluster {g}");
    }
}
