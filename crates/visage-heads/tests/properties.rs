//! Identities between heads that must hold for any input (proptest).

mod common;

use common::{assert_close, evaluate, evaluate_sharded};
use proptest::prelude::*;
use visage_heads::heads::{
    arcface::ArcFaceConfig, combined::CombinedConfig, cosface::CosFaceConfig, normface::NormFaceConfig, subcenter::SubCenterConfig, svam::SvAmConfig,
};
use visage_heads::{HeadConfig, PartialFcConfig};

/// A batch: `batch` features of dimension `dim` with norms well away from 0,
/// `classes·k` centres, labels in range.
fn batch(k: usize) -> impl Strategy<Value = (Vec<f32>, Vec<f32>, Vec<usize>)> {
    (2usize..6, 3usize..7, 2usize..7).prop_flat_map(move |(batch, dim, classes)| {
        (
            prop::collection::vec(prop::collection::vec(-3.0f32..3.0, dim), batch)
                .prop_filter("features need a direction", |rows| rows.iter().all(|r| norm(r) > 0.3)),
            prop::collection::vec(prop::collection::vec(-1.5f32..1.5, dim), classes * k)
                .prop_filter("centres need a direction", |rows| rows.iter().all(|r| norm(r) > 0.3)),
            prop::collection::vec(0..classes, batch),
        )
            .prop_map(|(x, w, y)| (x.concat().iter().map(|v| v * 8.0).collect(), w.concat(), y))
    })
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn cosface_and_arcface_without_margin_are_normface((x, w, y) in batch(1), s in 8.0f64..64.0) {
        let normface = evaluate(HeadConfig::NormFace(NormFaceConfig { s }), &x, &w, &y).unwrap();
        let cosface = evaluate(HeadConfig::CosFace(CosFaceConfig { s, m: 0.0 }), &x, &w, &y).unwrap();
        let arcface = evaluate(HeadConfig::ArcFace(ArcFaceConfig { s, m: 0.0, easy_margin: false }), &x, &w, &y).unwrap();
        assert_close(&cosface, &normface, 1e-5, "cosface m=0");
        assert_close(&arcface, &normface, 1e-4, "arcface m=0");
    }

    #[test]
    fn subcenter_with_one_centre_is_arcface((x, w, y) in batch(1), m in 0.1f64..0.7, easy_margin: bool) {
        let arc = ArcFaceConfig { s: 64.0, m, easy_margin };
        let arcface = evaluate(HeadConfig::ArcFace(arc), &x, &w, &y).unwrap();
        let sub = SubCenterConfig { s: 64.0, m, easy_margin, k: 1 };
        let subcenter = evaluate(HeadConfig::SubCenter(sub), &x, &w, &y).unwrap();
        assert_close(&subcenter, &arcface, 1e-6, "subcenter k=1");
    }

    #[test]
    fn combined_one_half_zero_is_arcface_inside_its_branch((x, w, y) in batch(1)) {
        let arcface = evaluate(HeadConfig::ArcFace(ArcFaceConfig::default()), &x, &w, &y).unwrap();
        let combined = evaluate(HeadConfig::Combined(CombinedConfig { s: 64.0, m1: 1.0, m2: 0.5, m3: 0.0 }), &x, &w, &y).unwrap();
        // The two differ only where θ + 0.5 > π (arcface's fallback); keep batches outside it.
        let threshold = (std::f64::consts::PI - 0.5).cos();
        let dim = x.len() / y.len();
        let outside_fallback = y.iter().enumerate().all(|(i, &label)| {
            let (xi, wi) = (&x[i * dim..(i + 1) * dim], &w[label * dim..(label + 1) * dim]);
            let cos = xi.iter().zip(wi).map(|(a, b)| a * b).sum::<f32>() / (norm(xi) * norm(wi));
            cos as f64 > threshold + 1e-3
        });
        prop_assume!(outside_fallback);
        assert_close(&combined, &arcface, 1e-5, "combined(1, 0.5, 0)");
    }

    #[test]
    fn partial_fc_at_rate_one_is_the_full_head((x, w, y) in batch(2), kind in 0usize..3) {
        let config = [
            HeadConfig::SubCenter(SubCenterConfig { k: 2, ..SubCenterConfig::default() }),
            HeadConfig::SubCenter(SubCenterConfig { k: 2, m: 0.3, easy_margin: true, s: 30.0 }),
            HeadConfig::SubCenter(SubCenterConfig { k: 2, m: 0.0, easy_margin: false, s: 16.0 }),
        ][kind];
        let full = evaluate(config, &x, &w, &y).unwrap();
        let partial = evaluate_sharded(config, &x, &w, &y, 1 << 20, Some(PartialFcConfig { sample_rate: 1.0, seed: 7, ..Default::default() })).unwrap();
        assert_close(&partial, &full, 1e-6, "partial fc r=1");
    }

    #[test]
    fn sharded_softmax_equals_one_shard((x, w, y) in batch(1), split in 1usize..3) {
        for config in [
            HeadConfig::ArcFace(ArcFaceConfig::default()),
            HeadConfig::CosFace(CosFaceConfig::default()),
            // The support vectors are decided against the target cosine, which lives in one shard.
            HeadConfig::SvAm(SvAmConfig { t: 1.4, ..SvAmConfig::default() }),
        ] {
            let full = evaluate(config, &x, &w, &y).unwrap();
            let sharded = evaluate_sharded(config, &x, &w, &y, split, None).unwrap();
            assert_close(&sharded, &full, 1e-5, "sharded");
        }
    }

    #[test]
    fn svam_is_cosface_at_t_one_and_never_below_it((x, w, y) in batch(1), s in 8.0f64..64.0, m in 0.0f64..0.5, t in 1.0f64..2.0) {
        let cosface = evaluate(HeadConfig::CosFace(CosFaceConfig { s, m }), &x, &w, &y).unwrap();
        let at_one = evaluate(HeadConfig::SvAm(SvAmConfig { s, m, t: 1.0 }), &x, &w, &y).unwrap();
        assert_close(&at_one, &cosface, 1e-6, "svam t=1");
        // t > 1 only raises support vectors' logits (t·cos + t − 1 ≥ cos): the loss cannot drop.
        let svam = evaluate(HeadConfig::SvAm(SvAmConfig { s, m, t }), &x, &w, &y).unwrap();
        prop_assert!(svam.loss >= cosface.loss * (1.0 - 1e-6), "svam {} < cosface {}", svam.loss, cosface.loss);
    }
}
