//! Partial FC's sampling rule and its gradients.

mod common;

use common::{assert_close, evaluate, evaluate_sharded, evaluate_split};
use visage_heads::heads::{
    adaface::AdaFaceConfig, arcface::ArcFaceConfig, cosface::CosFaceConfig, magface::MagFaceConfig, softmax::SoftmaxConfig,
    subcenter::SubCenterConfig, svam::SvAmConfig,
};
use visage_heads::{HeadConfig, PartialFc, PartialFcConfig};

#[test]
fn keeps_every_positive_and_max_of_positives_and_rate_times_classes() {
    let pfc = PartialFc::new(PartialFcConfig { sample_rate: 0.1, seed: 3, ..Default::default() }).unwrap();
    let labels = [5, 17, 17, 999, 0];
    let kept = pfc.sample_shard(0, 0, 1000, &labels, 11);
    assert_eq!(kept.len(), 100, "⌈0.1 · 1000⌉");
    for label in labels {
        assert!(kept.contains(&label), "positive {label} kept");
    }
    assert!(kept.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
    // More positives than ⌈r·C⌉: exactly the positives.
    let many: Vec<usize> = (0..30).map(|i| i * 3).collect();
    assert_eq!(pfc.sample_shard(0, 0, 100, &many, 0), many);
    // A shard holding classes 500..600 keeps its own positives only, in global ids.
    let kept = pfc.sample_shard(1, 500, 100, &[510, 3], 0);
    assert_eq!(kept.len(), 10);
    assert!(kept.contains(&510) && kept.iter().all(|c| (500..600).contains(c)));
}

#[test]
fn sampling_is_a_function_of_seed_and_step() {
    let pfc = PartialFc::new(PartialFcConfig { sample_rate: 0.2, seed: 9, ..Default::default() }).unwrap();
    let labels = [1, 2, 3];
    assert_eq!(pfc.sample_shard(0, 0, 500, &labels, 4), pfc.sample_shard(0, 0, 500, &labels, 4));
    assert_ne!(pfc.sample_shard(0, 0, 500, &labels, 4), pfc.sample_shard(0, 0, 500, &labels, 5));
    let other_seed = PartialFc::new(PartialFcConfig { sample_rate: 0.2, seed: 10, ..Default::default() }).unwrap();
    assert_ne!(pfc.sample_shard(0, 0, 500, &labels, 4), other_seed.sample_shard(0, 0, 500, &labels, 4));
}

#[test]
fn refuses_rates_outside_zero_one() {
    for r in [0.0, -0.1, 1.5, f64::NAN] {
        assert!(PartialFc::new(PartialFcConfig { sample_rate: r, seed: 0, ..Default::default() }).is_err(), "rate {r}");
    }
}

#[test]
fn only_kept_centres_get_gradient_and_the_loss_is_the_head_on_them() {
    let dim = 3;
    let classes = 40;
    let centres: Vec<f32> = (0..classes * dim).map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0 + 0.01).collect();
    let features: Vec<f32> = (0..4 * dim).map(|i| ((i * 53 % 7) as f32 - 3.0) * 4.0 + 0.5).collect();
    let labels = [3, 7, 7, 31];
    let config = HeadConfig::ArcFace(ArcFaceConfig::default());
    let pfc_config = PartialFcConfig { sample_rate: 0.25, seed: 1, ..Default::default() };
    let partial = evaluate_sharded(config, &features, &centres, &labels, classes, Some(pfc_config)).unwrap();
    let kept = PartialFc::new(pfc_config).unwrap().sample_shard(0, 0, classes, &labels, 0);
    assert_eq!(kept.len(), 10);
    for class in 0..classes {
        let row = &partial.grad_centres[class * dim..(class + 1) * dim];
        if !kept.contains(&class) {
            assert!(row.iter().all(|&g| g == 0.0), "class {class} was not sampled but has gradient {row:?}");
        }
    }
    // The same loss as the full head over only the kept centres, labels remapped.
    let sub_centres: Vec<f32> = kept.iter().flat_map(|&c| centres[c * dim..(c + 1) * dim].to_vec()).collect();
    let sub_labels: Vec<usize> = labels.iter().map(|l| kept.iter().position(|c| c == l).unwrap()).collect();
    let reference = evaluate(config, &features, &sub_centres, &sub_labels).unwrap();
    let mut expanded = reference.clone();
    expanded.grad_centres = vec![0.0; classes * dim];
    for (i, &c) in kept.iter().enumerate() {
        expanded.grad_centres[c * dim..(c + 1) * dim].copy_from_slice(&reference.grad_centres[i * dim..(i + 1) * dim]);
    }
    assert_close(&partial, &expanded, 1e-6, "partial fc vs full head on kept classes");
}

#[test]
fn sharded_partial_fc_samples_each_shard_and_keeps_all_positives() {
    let dim = 3;
    let classes = 60;
    let centres: Vec<f32> = (0..classes * dim).map(|i| ((i * 31 % 13) as f32 - 6.0) / 4.0 + 0.01).collect();
    let features: Vec<f32> = (0..3 * dim).map(|i| ((i * 17 % 5) as f32 - 2.0) * 5.0 + 0.3).collect();
    let labels = [1, 25, 59];
    let config = HeadConfig::ArcFace(ArcFaceConfig::default());
    let pfc_config = PartialFcConfig { sample_rate: 0.2, seed: 0, ..Default::default() };
    let out = evaluate_sharded(config, &features, &centres, &labels, 20, Some(pfc_config)).unwrap();
    assert!(out.loss.is_finite() && out.loss > 0.0);
    let pfc = PartialFc::new(pfc_config).unwrap();
    let kept: Vec<usize> = (0..3)
        .flat_map(|shard| {
            let kept = pfc.sample_shard(shard, shard * 20, 20, &labels, 0);
            assert_eq!(kept.len(), 4, "⌈0.2·20⌉ classes from shard {shard}");
            kept
        })
        .collect();
    for label in labels {
        assert!(kept.contains(&label), "positive {label} kept");
        let row = &out.grad_centres[label * dim..(label + 1) * dim];
        assert!(row.iter().any(|&g| g != 0.0), "positive class {label} gets gradient");
    }
    for class in (0..classes).filter(|c| !kept.contains(c)) {
        assert!(out.grad_centres[class * dim..(class + 1) * dim].iter().all(|&g| g == 0.0), "class {class} was not sampled");
    }
}

/// `heads eval` with Partial FC's sampler: the kept classes obey the rule
/// (every positive, max(#positives, ⌈r·C⌉) per shard), and evaluating the
/// same batch with those classes given (what the float64 reference checks in
/// the partial_fc_* fixtures) gives the same loss and gradients.
#[test]
fn a_sampled_case_equals_the_case_with_its_classes_given() {
    use visage_heads::case::HeadCase;
    type Backend = burn::backend::Autodiff<burn::backend::Flex>;
    let weights: Vec<String> =
        (0..10).map(|i| format!("[{}, {}, {}]", (i as f64 * 0.7).sin() + 1.5, (i as f64 * 1.3).cos(), 0.2 * i as f64 - 1.0)).collect();
    let case = |partial: &str| {
        format!(
            r#"{{"head": {{"kind": "arcface"}}, "embeddings": [[3, 1, 2], [-1, 4, 0.5], [2, -2, 1]], "weights": [{}], "labels": [1, 7, 1], "partial_fc": {partial}}}"#,
            weights.join(", ")
        )
    };
    let sampled = HeadCase::from_json(&case(r#"{"sample_rate": 0.3, "seed": 11, "step": 4, "shards": [6, 4]}"#))
        .unwrap()
        .evaluate::<Backend>(&Default::default())
        .unwrap();
    let kept = sampled.sampled_classes.clone().unwrap();
    // Shard 0 (classes 0..6): positive 1, ⌈0.3·6⌉ = 2 kept; shard 1 (6..10): positive 7, ⌈0.3·4⌉ = 2 kept.
    assert_eq!(kept.iter().filter(|&&c| c < 6).count(), 2, "{kept:?}");
    assert_eq!(kept.iter().filter(|&&c| c >= 6).count(), 2, "{kept:?}");
    assert!(kept.contains(&1) && kept.contains(&7), "{kept:?}");
    let given = HeadCase::from_json(&case(&format!(r#"{{"shards": [6, 4], "sampled": {kept:?}}}"#)))
        .unwrap()
        .evaluate::<Backend>(&Default::default())
        .unwrap();
    assert_eq!(given.loss, sampled.loss);
    assert_eq!(given.grad_weights, sampled.grad_weights);
    assert_eq!(given.grad_embeddings, sampled.grad_embeddings);
    for (row, grad) in sampled.grad_weights.iter().enumerate() {
        assert_eq!(grad.iter().all(|&g| g == 0.0), !kept.contains(&row), "row {row}: only kept centres get gradient");
    }
    // Bad Partial FC fields are refused by name.
    for (partial, mentions) in [
        (r#"{"shards": [6, 5]}"#, "partial_fc.shards"),
        (r#"{"sampled": [1, 2]}"#, "labels[1] = 7 is not among them"),
        (r#"{"sampled": [2, 1, 7]}"#, "ascending"),
        (r#"{"sampled": [1, 7], "seed": 3}"#, "not both"),
        (r#"{"shards": [2, 4, 4], "sampled": [1, 7]}"#, "shard 1 (classes 2..6) keeps no class"),
        (r#"{"sample_rate": 0}"#, "sample_rate"),
        (r#"{"rate": 0.5}"#, "unknown field"),
    ] {
        let err = HeadCase::from_json(&case(partial)).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains(mentions), "{partial}: {err}");
    }
}

/// Class centres split across processes (each holding one slice, seeing
/// every feature, summing row maxima and row sums of exp through an
/// all-reduce) give the head of the same slices held in one process: the
/// same sampled classes (shard index = rank), the loss and both gradients
/// to float rounding, with and without sampling, for 2 and 3 processes.
/// MagFace's regulariser is counted once, AdaFace's statistics see the
/// whole batch on every process.
#[test]
fn centres_split_across_processes_give_the_head_of_the_same_shards_in_one_process() {
    let dim = 4;
    let classes = 30;
    let centres: Vec<f32> = (0..2 * classes * dim).map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0 + 0.01).collect();
    let features: Vec<f32> = (0..6 * dim).map(|i| ((i * 53 % 7) as f32 - 3.0) * 4.0 + 0.5).collect();
    let labels = [3, 7, 7, 29, 12, 20];
    let heads = [
        HeadConfig::Softmax(SoftmaxConfig {}),
        HeadConfig::CosFace(CosFaceConfig::default()),
        HeadConfig::ArcFace(ArcFaceConfig::default()),
        HeadConfig::SubCenter(SubCenterConfig { k: 2, ..SubCenterConfig::default() }),
        HeadConfig::MagFace(MagFaceConfig::default()),
        HeadConfig::AdaFace(AdaFaceConfig::default()),
    ];
    for config in heads {
        let centres = &centres[..classes * config.centres_per_class() * dim];
        for sample_rate in [1.0, 0.3] {
            for split in [15, 10] {
                let pfc = PartialFcConfig { sample_rate, seed: 5, model_parallel: true };
                let split_run = evaluate_split(config, &features, centres, &labels, split, pfc).unwrap();
                let in_process = evaluate_sharded(config, &features, centres, &labels, split, Some(pfc)).unwrap();
                let what = format!("{} split by {split}, sample rate {sample_rate}", config.kind());
                assert_close(&split_run, &in_process, 1e-5, &what);
            }
        }
    }
}

/// One process holding every centre is the unsharded head, loss to the bit.
#[test]
fn one_process_holding_every_centre_is_the_unsharded_head() {
    let dim = 4;
    let centres: Vec<f32> = (0..20 * dim).map(|i| ((i * 31 % 13) as f32 - 6.0) / 4.0 + 0.01).collect();
    let features: Vec<f32> = (0..5 * dim).map(|i| ((i * 17 % 5) as f32 - 2.0) * 5.0 + 0.3).collect();
    let labels = [1, 19, 5, 5, 0];
    for config in [HeadConfig::ArcFace(ArcFaceConfig::default()), HeadConfig::MagFace(MagFaceConfig::default())] {
        let pfc = PartialFcConfig { sample_rate: 1.0, seed: 0, model_parallel: true };
        let split_run = evaluate_split(config, &features, &centres, &labels, 20, pfc).unwrap();
        let full = evaluate(config, &features, &centres, &labels).unwrap();
        assert_eq!(split_run.loss.to_bits(), full.loss.to_bits(), "{}: {} vs {}", config.kind(), split_run.loss, full.loss);
        assert_close(&split_run, &full, 1e-6, config.kind());
    }
}

#[test]
fn svam_refuses_to_split_its_centres() {
    let config = HeadConfig::SvAm(SvAmConfig::default());
    let pfc = PartialFcConfig { sample_rate: 1.0, seed: 0, model_parallel: true };
    let centres: Vec<f32> = (0..8).map(|i| i as f32 + 0.5).collect();
    let err = evaluate_split(config, &[1.0, 2.0, 3.0, 4.0], &centres, &[1], 1, pfc).unwrap_err();
    assert!(matches!(err, visage_heads::HeadError::Unsupported { head: "svam", .. }), "{err}");
}
