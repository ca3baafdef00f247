//! The pieces of synthesis that have exact answers: the BatchNorm-statistics
//! prior against a hand computation, the frozen BatchNorm against burn's own
//! inference path, and the image gradient against finite differences.

use burn::module::{AutodiffModule, Module, Param, RunningState};
use burn::nn::BatchNormConfig;
use burn::tensor::{Tensor, TensorData};
use visage_backend::{Cpu, CpuAutodiff};
use visage_image::Normalization;
use visage_nn::{BackboneShape, ForwardHook, IResNetConfig, IResNetLayout};
use visage_synth::frozen::{statistics_distance, FrozenStatistics};
use visage_synth::{objective, SynthConfig};

fn tensor<B: burn::tensor::backend::Backend, const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

fn values<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

#[test]
fn the_prior_of_one_layer_is_the_distance_of_its_batch_statistics() {
    // [N=2, C=2, H=1, W=2]. Channel 0 holds 1, 3 | 5, 7: mean 4, biased
    // variance (9 + 1 + 1 + 9) / 4 = 5. Channel 1 holds 0, 0 | 2, 2: mean 1,
    // variance 1. Running mean (3, 1), running variance (4, 3):
    // ‖(4−3, 1−1)‖ + ‖(5−4, 1−3)‖ = 1 + √5.
    let input = tensor::<Cpu, 4>(vec![1.0, 3.0, 0.0, 0.0, 5.0, 7.0, 2.0, 2.0], [2, 2, 1, 2]);
    let distance = statistics_distance(input, tensor(vec![3.0, 1.0], [2]), tensor(vec![4.0, 3.0], [2]));
    let expected = 1.0 + 5f32.sqrt();
    assert!((values(distance)[0] - expected).abs() < 1e-6, "expected {expected}");
}

#[test]
fn frozen_batch_norm_normalises_with_running_statistics_under_autodiff() {
    let device = Default::default();
    let mut norm = BatchNormConfig::new(3).with_epsilon(1e-5).init::<CpuAutodiff>(&device);
    norm.gamma = Param::from_tensor(tensor(vec![0.5, -2.0, 1.5], [3]));
    norm.beta = Param::from_tensor(tensor(vec![0.1, 0.2, -0.3], [3]));
    norm.running_mean = RunningState::new(tensor(vec![1.0, -1.0, 0.25], [3]));
    norm.running_var = RunningState::new(tensor(vec![4.0, 0.5, 2.0], [3]));
    let input: Vec<f32> = (0..2 * 3 * 2 * 2).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();

    let mut frozen = FrozenStatistics::<CpuAutodiff>::default();
    let ours = values(frozen.batch_norm(&norm, tensor::<CpuAutodiff, 4>(input.clone(), [2, 3, 2, 2])));
    // burn's own BatchNorm on a non-autodiff backend is its inference path.
    let reference = values(norm.valid().forward(tensor::<Cpu, 4>(input.clone(), [2, 3, 2, 2])));
    // and by hand for one value: channel 1, first element of sample 0
    let by_hand = (input[4] - -1.0) / (0.5f32 + 1e-5).sqrt() * -2.0 + 0.2;
    assert!((ours[4] - by_hand).abs() < 1e-5, "{} vs {by_hand}", ours[4]);
    for (a, b) in ours.iter().zip(&reference) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    let (_, layers) = frozen.prior_sum().unwrap();
    assert_eq!(layers, 1);
}

#[test]
fn image_gradient_of_the_identity_loss_equals_finite_differences() {
    gradient_equals_finite_differences(SynthConfig { bn_weight: 0.0, tv_weight: 0.0, l2_weight: 0.0, ..SynthConfig::default() });
}

#[test]
fn image_gradient_with_the_batch_norm_prior_equals_finite_differences() {
    gradient_equals_finite_differences(SynthConfig { bn_weight: 1.0, tv_weight: 0.0, l2_weight: 0.0, ..SynthConfig::default() });
}

#[test]
fn image_gradient_of_the_whole_loss_equals_finite_differences() {
    gradient_equals_finite_differences(SynthConfig { bn_weight: 0.05, tv_weight: 0.5, l2_weight: 0.01, ..SynthConfig::default() });
}

/// The same network on every run (see `visage_nn::seeded`), so the numbers
/// checked do not change from run to run.
fn seeded_network(shape: &BackboneShape, device: &burn::tensor::Device<CpuAutodiff>) -> visage_nn::Backbone<CpuAutodiff> {
    visage_nn::with_backend_rng::<CpuAutodiff, _>(device, 11, || {
        let network = shape.init::<CpuAutodiff>(device).unwrap();
        visage_nn::materialize(&network);
        network
    })
    .no_grad()
}

/// Autodiff's gradient of the loss w.r.t. chosen pixels against central
/// differences of the loss evaluated on the plain (inference) backend.
fn gradient_equals_finite_differences(config: SynthConfig) {
    let device = Default::default();
    let shape = BackboneShape::IResNet(IResNetConfig {
        blocks_per_stage: [1, 1, 1, 1],
        stage_widths: [4, 4, 8, 8],
        stem_width: 4,
        embedding_size: 8,
        dropout: 0.0,
        input_size: 16,
        layout: IResNetLayout::Insightface,
    });
    let network = seeded_network(&shape, &device);
    let normalization = Normalization::MAGFACE; // BGR and a non-symmetric scale: both mappings are exercised
    let count = 2;
    let pixels: Vec<f32> = (0..count * 3 * 16 * 16).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.6).collect();
    let target_values: Vec<f32> = (0..count * 8).map(|i| ((i * 31 % 17) as f32 - 8.0) / 8.0).collect();
    let unit = |v: &[f32]| {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / norm).collect::<Vec<f32>>()
    };
    let targets: Vec<f32> = target_values.chunks(8).flat_map(unit).collect();

    let images = tensor::<CpuAutodiff, 4>(pixels.clone(), [count, 3, 16, 16]).require_grad();
    let parts = objective(&network, &normalization, images.clone(), images.clone(), &tensor(targets.clone(), [count, 8]), &config);
    let gradients = parts.loss.backward();
    let analytic = values(images.grad(&gradients).unwrap());

    let inference = network.valid();
    let loss_at = |values_: &[f32]| -> f64 {
        let images = tensor::<Cpu, 4>(values_.to_vec(), [count, 3, 16, 16]);
        let parts = objective(&inference, &normalization, images.clone(), images, &tensor(targets.clone(), [count, 8]), &config);
        f64::from(values(parts.loss)[0])
    };
    // Single pixels' gradients are too small for f32 differences; the
    // derivative along a whole-image direction is not: along the gradient it
    // is ‖g‖, along a mix of the gradient and a fixed random direction ⟨g, v⟩.
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let gradient_direction: Vec<f32> = analytic.iter().map(|g| g / norm(&analytic)).collect();
    let random: Vec<f32> = (0..analytic.len()).map(|i| ((i * 2654435761usize) % 2001) as f32 / 1000.0 - 1.0).collect();
    let mixed: Vec<f32> = gradient_direction.iter().zip(&random).map(|(g, r)| 0.6 * g + 0.8 * r / norm(&random)).collect();
    assert!(norm(&analytic) > 1e-4, "gradient norm {}", norm(&analytic));
    for (name, direction) in [("gradient", &gradient_direction), ("mixed", &mixed)] {
        let step = 2e-2f32;
        let moved = |sign: f32| pixels.iter().zip(direction).map(|(p, d)| p + sign * step * d).collect::<Vec<f32>>();
        let numeric = (loss_at(&moved(1.0)) - loss_at(&moved(-1.0))) / (2.0 * f64::from(step));
        let exact: f64 = analytic.iter().zip(direction).map(|(g, d)| f64::from(g * d)).sum();
        eprintln!("along the {name} direction: autodiff {exact:.7}, finite difference {numeric:.7}");
        assert!((numeric - exact).abs() < 0.03 * exact.abs(), "along the {name} direction: autodiff {exact:.7}, finite difference {numeric:.7}");
    }
}
