//! AdaFace's running statistics are part of the head's checkpoint.

mod common;

use common::tensor;
use visage_heads::heads::adaface::AdaFaceConfig;
use visage_heads::{AdaFaceState, HeadConfig, MarginHead};

#[test]
fn adaface_state_survives_a_save_and_restore() {
    let features = [3.0f32, 4.0, 30.0, 40.0, 0.6, 0.8];
    let centres = [1.0f32, 0.0, 0.0, 1.0];
    let labels = [0, 1, 1];
    let mut head = MarginHead::new(HeadConfig::AdaFace(AdaFaceConfig::default())).unwrap();
    head.forward(tensor(&features, 3), tensor(&centres, 2), &labels).unwrap();
    // Norms 5, 50, 1: mean 56/3, std √((5−m)²+(50−m)²+(1−m)²)/√2.
    let mean = 56.0 / 3.0;
    let std = (((5.0f64 - mean).powi(2) + (50.0 - mean).powi(2) + (1.0 - mean).powi(2)) / 2.0).sqrt();
    let expected = AdaFaceState { batch_mean: 0.01 * mean + 0.99 * 20.0, batch_std: 0.01 * std + 0.99 * 100.0 };
    let state = head.adaface_state().unwrap();
    assert!((state.batch_mean - expected.batch_mean).abs() < 1e-5, "{state:?} vs {expected:?}");
    assert!((state.batch_std - expected.batch_std).abs() < 1e-5, "{state:?} vs {expected:?}");

    let saved = serde_json::to_string(&head).unwrap();
    let mut restored: MarginHead = serde_json::from_str(&saved).unwrap();
    assert_eq!(restored, head);
    // The next batch continues from the restored statistics, identically.
    let a = head.forward(tensor(&features, 3), tensor(&centres, 2), &labels).unwrap().loss.into_scalar();
    let b = restored.forward(tensor(&features, 3), tensor(&centres, 2), &labels).unwrap().loss.into_scalar();
    assert_eq!(a, b);
    assert_eq!(head.adaface_state(), restored.adaface_state());
}

#[test]
fn a_refused_batch_leaves_the_adaface_state_alone() {
    let mut head = MarginHead::new(HeadConfig::AdaFace(AdaFaceConfig::default())).unwrap();
    let before = head.adaface_state();
    // A zero class centre is refused after the norms are read: μ and σ must not move.
    let result = head.forward(tensor(&[3.0, 4.0, 30.0, 40.0], 2), tensor(&[1.0, 0.0, 0.0, 0.0], 2), &[0, 1]);
    assert!(result.is_err());
    assert_eq!(head.adaface_state(), before);
}
