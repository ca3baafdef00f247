//! Edge cases that break naive implementations: cosines of exactly ±1, zero
//! vectors, out-of-range labels, huge logits, and MagFace parameters that break
//! the paper's bound.

mod common;

use common::evaluate;
use visage_heads::heads::{
    adaface::AdaFaceConfig, arcface::ArcFaceConfig, combined::CombinedConfig, cosface::CosFaceConfig, magface::MagFaceConfig,
    normface::NormFaceConfig, softmax::SoftmaxConfig, sphereface::SphereFaceConfig, subcenter::SubCenterConfig,
};
use visage_heads::{HeadConfig, HeadError};

fn every_head() -> Vec<HeadConfig> {
    vec![
        HeadConfig::Softmax(SoftmaxConfig {}),
        HeadConfig::NormFace(NormFaceConfig::default()),
        HeadConfig::SphereFace(SphereFaceConfig::default()),
        HeadConfig::SphereFace(SphereFaceConfig { s: 64.0, m: 2.5 }),
        HeadConfig::CosFace(CosFaceConfig::default()),
        HeadConfig::ArcFace(ArcFaceConfig::default()),
        HeadConfig::ArcFace(ArcFaceConfig { easy_margin: true, ..ArcFaceConfig::default() }),
        HeadConfig::Combined(CombinedConfig { s: 64.0, m1: 1.0, m2: 0.5, m3: 0.0 }),
        HeadConfig::Combined(CombinedConfig { s: 64.0, m1: 0.9, m2: 0.4, m3: 0.15 }),
        HeadConfig::SubCenter(SubCenterConfig { k: 1, ..SubCenterConfig::default() }),
        HeadConfig::MagFace(MagFaceConfig::default()),
        HeadConfig::MagFace(MagFaceConfig { easy_margin: false, ..MagFaceConfig::default() }),
        HeadConfig::AdaFace(AdaFaceConfig::default()),
    ]
}

fn all_finite(values: &[f32]) -> bool {
    values.iter().all(|v| v.is_finite())
}

#[test]
fn gradients_are_finite_when_cosines_are_exactly_plus_or_minus_one() {
    // Class centres along ±axes; features exactly on them, so every target or
    // non-target cosine is exactly 1, −1 or 0.
    let centres = [1.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    let features = [30.0, 0.0, 0.0, 30.0, 0.0, 0.0, -50.0, 0.0, 0.0, 0.0, 20.0, 0.0];
    let labels = [0, 1, 0, 2]; // cos θ_target = 1, −1, −1, 1
    for config in every_head() {
        let out = evaluate(config, &features, &centres, &labels).unwrap_or_else(|e| panic!("{}: {e}", config.kind()));
        assert!(out.loss.is_finite(), "{}: loss {}", config.kind(), out.loss);
        assert!(all_finite(&out.grad_features), "{}: feature gradient {:?}", config.kind(), out.grad_features);
        assert!(all_finite(&out.grad_centres), "{}: centre gradient {:?}", config.kind(), out.grad_centres);
    }
}

#[test]
fn no_overflow_with_huge_logits() {
    // s = 64 with every non-target at cos = 1 and the target at cos = −1: the
    // exponentials would overflow f32 without the max shift (e^128 > f32::MAX).
    let dim = 4;
    let classes = 2000;
    let mut centres = vec![0.0f32; classes * dim];
    for c in 0..classes {
        centres[c * dim] = if c == 0 { -1.0 } else { 1.0 };
    }
    let features = [10.0f32, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0];
    for config in [HeadConfig::NormFace(NormFaceConfig::default()), HeadConfig::ArcFace(ArcFaceConfig::default())] {
        let out = evaluate(config, &features, &centres, &[0, 0]).unwrap();
        // loss = log(1999·e^64 + e^(target)) − target ≈ 64 + ln 1999 − target.
        let target = match config {
            HeadConfig::ArcFace(c) => 64.0 * (-1.0 - c.m * c.m.sin()),
            _ => -64.0,
        };
        let expected = 64.0 + (1999f64).ln() - target;
        assert!((out.loss - expected).abs() / expected < 1e-5, "{}: {} vs {expected}", config.kind(), out.loss);
        assert!(all_finite(&out.grad_features) && all_finite(&out.grad_centres));
    }
    // Plain softmax with logits of ±1e4.
    let out = evaluate(HeadConfig::Softmax(SoftmaxConfig {}), &[1e4, 0.0, 0.0, 0.0], &[1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0], &[1]).unwrap();
    assert!((out.loss - 2e4).abs() < 1.0, "softmax loss {}", out.loss);
}

#[test]
fn zero_vectors_are_refused_by_row() {
    let centres = [1.0, 0.0, 0.0, 1.0];
    let err = evaluate(HeadConfig::ArcFace(ArcFaceConfig::default()), &[1.0, 2.0, 0.0, 0.0], &centres, &[0, 1]).unwrap_err();
    assert_eq!(err, HeadError::ZeroNorm { tensor: "embeddings", row: 1 });
    let err = evaluate(HeadConfig::CosFace(CosFaceConfig::default()), &[1.0, 2.0], &[1.0, 0.0, 0.0, 0.0], &[0]).unwrap_err();
    assert_eq!(err, HeadError::ZeroNorm { tensor: "weights", row: 1 });
    let err = evaluate(HeadConfig::NormFace(NormFaceConfig::default()), &[f32::NAN, 2.0], &centres, &[0]).unwrap_err();
    assert_eq!(err, HeadError::NonFinite { tensor: "embeddings", row: 0 });
}

#[test]
fn labels_out_of_range_are_refused() {
    let err = evaluate(HeadConfig::ArcFace(ArcFaceConfig::default()), &[1.0, 2.0, 3.0, 4.0], &[1.0, 0.0, 0.0, 1.0], &[0, 2]).unwrap_err();
    assert_eq!(err, HeadError::LabelOutOfRange { index: 1, label: 2, classes: 2 });
    // Sub-centres: 4 rows with k = 2 are 2 classes.
    let sub = HeadConfig::SubCenter(SubCenterConfig { k: 2, ..SubCenterConfig::default() });
    let err = evaluate(sub, &[1.0, 2.0], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0, -1.0, 0.0], &[2]).unwrap_err();
    assert_eq!(err, HeadError::LabelOutOfRange { index: 0, label: 2, classes: 2 });
}

#[test]
fn magface_refuses_parameters_that_break_the_bound_and_shows_it() {
    // Defaults: K = 0.35/100, −g'(10) = 1/100 − 1/110², bound = 64·0.0035/0.00991736 = 22.5867.
    let defaults = MagFaceConfig::default();
    let bound = 64.0 * 0.0035 / (0.01 - 1.0 / 12100.0);
    assert!((defaults.lambda_g_lower_bound() - bound).abs() < 1e-9);
    assert!((bound - 22.5867).abs() < 1e-4);
    let err = HeadConfig::MagFace(MagFaceConfig { lambda_g: 20.0, ..defaults }).validate().unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, HeadError::MagFaceBound { .. }), "{message}");
    assert!(message.contains("22.5867"), "the message shows the bound: {message}");
    assert!(HeadConfig::MagFace(MagFaceConfig { lambda_g: 22.6, ..defaults }).validate().is_ok());
}

#[test]
fn adaface_needs_two_samples_for_its_running_std() {
    let err = evaluate(HeadConfig::AdaFace(AdaFaceConfig::default()), &[1.0, 2.0], &[1.0, 0.0, 0.0, 1.0], &[0]).unwrap_err();
    assert_eq!(err, HeadError::BatchTooSmall { batch: 1 });
}

#[test]
fn arcface_uses_the_fallback_exactly_beyond_pi_minus_m() {
    // Two classes in 2-D: the loss is log(e^t + e^o) − t with the target logit t
    // from cos(θ + m) inside the branch and cos θ − m·sin m beyond θ = π − m.
    let m: f64 = 0.5;
    for theta in [std::f64::consts::PI - m - 0.05, std::f64::consts::PI - m + 0.05] {
        let cos = theta.cos();
        let expected = if cos > (std::f64::consts::PI - m).cos() { (theta + m).cos() } else { cos - m * m.sin() };
        let features = [cos as f32 * 20.0, theta.sin() as f32 * 20.0];
        let out = evaluate(HeadConfig::ArcFace(ArcFaceConfig::default()), &features, &[1.0, 0.0, 0.0, 1.0], &[0]).unwrap();
        let (target, other) = (64.0 * expected, 64.0 * theta.sin());
        let top = target.max(other);
        let reference = top + ((target - top).exp() + (other - top).exp()).ln() - target;
        assert!((out.loss - reference).abs() / reference.abs() < 1e-5, "θ = {theta}: {} vs {reference}", out.loss);
    }
}
