//! Every head against an independent float64 NumPy reference with central
//! finite-difference gradients (`scripts/reference/heads_reference.py`), and
//! against the shared contract examples made by another independent reference.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex};
use visage_heads::case::{HeadCase, HeadCaseResult};

type Backend = Autodiff<Flex>;

/// Loss tolerance, relative.
const LOSS_RTOL: f64 = 1e-5;
/// Gradient tolerance, relative to the largest entry of the reference matrix.
const GRAD_RTOL: f64 = 2e-5;

fn cases_in(dir: &Path) -> Vec<PathBuf> {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".input.json"))
        .collect();
    inputs.sort();
    inputs
}

fn max_abs(m: &[Vec<f64>]) -> f64 {
    m.iter().flatten().fold(0.0f64, |a, &x| a.max(x.abs()))
}

/// Largest |ours − reference| relative to the reference's largest entry.
fn matrix_error(ours: &[Vec<f64>], reference: &[Vec<f64>]) -> f64 {
    assert_eq!(ours.len(), reference.len());
    let scale = max_abs(reference).max(1e-12);
    ours.iter().flatten().zip(reference.iter().flatten()).fold(0.0f64, |a, (x, y)| a.max((x - y).abs() / scale))
}

fn check_case(input: &Path) -> String {
    let expected_path = PathBuf::from(input.to_string_lossy().replace(".input.json", ".expected.json"));
    let case = HeadCase::from_json(&std::fs::read_to_string(input).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    let expected: HeadCaseResult = serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
    let ours = case.evaluate::<Backend>(&Default::default()).unwrap();
    let name = input.file_name().unwrap().to_string_lossy();
    let loss_error = (ours.loss - expected.loss).abs() / expected.loss.abs().max(1e-12);
    let grad_x = matrix_error(&ours.grad_embeddings, &expected.grad_embeddings);
    let grad_w = matrix_error(&ours.grad_weights, &expected.grad_weights);
    assert!(loss_error < LOSS_RTOL, "{name}: loss {} vs reference {} (rel. error {loss_error:e})", ours.loss, expected.loss);
    assert!(grad_x < GRAD_RTOL, "{name}: grad_embeddings off by {grad_x:e} of the largest entry");
    assert!(grad_w < GRAD_RTOL, "{name}: grad_weights off by {grad_w:e} of the largest entry");
    assert_eq!(ours.sampled_classes, expected.sampled_classes, "{name}: the kept classes");
    if let Some(reference_state) = expected.state {
        let state = ours.state.expect("adaface returns its state");
        let mean_error = (state.batch_mean - reference_state.batch_mean).abs() / reference_state.batch_mean.abs();
        let std_error = (state.batch_std - reference_state.batch_std).abs() / reference_state.batch_std.abs();
        assert!(mean_error < 1e-6 && std_error < 1e-6, "{name}: state {state:?} vs {reference_state:?}");
    }
    format!("{name}: loss {loss_error:.1e}, grad_x {grad_x:.1e}, grad_w {grad_w:.1e}")
}

#[test]
fn every_head_matches_the_float64_reference() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cases = cases_in(&dir);
    assert!(cases.len() >= 20, "expected the full fixture set in {}", dir.display());
    for case in cases {
        println!("{}", check_case(&case));
    }
}

#[test]
fn shared_contract_examples_match() {
    // The project's worked examples, copied into the repository (docs/spec/).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/spec/examples");
    let cases: Vec<PathBuf> = cases_in(&dir).into_iter().filter(|p| p.to_string_lossy().contains("heads_")).collect();
    assert_eq!(cases.len(), 3, "arcface, magface and adaface examples");
    for case in cases {
        println!("{}", check_case(&case));
    }
}
