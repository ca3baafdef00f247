//! Forward parity with PyTorch: tiny width-reduced networks with seeded random
//! weights and BatchNorm statistics, written by
//! `scripts/reference/backbones_reference.py` as PyTorch state dicts
//! (safetensors) together with an input batch and the eval-mode output.
//! Loading goes through the same key mapping a real checkpoint uses, so a
//! wrong name, a missing transpose or a layer in the wrong place fails here.

mod common;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use visage_backend::{Cpu, CpuAutodiff};
use visage_nn::{load_state_dict, IResNetConfig, IResNetLayout, MobileFaceNetConfig, NnError, StateDict};

use common::fixture;

use common::tiny_iresnet;

/// The tiny MobileFaceNet of the reference script.
fn tiny_mobilefacenet(blocks_per_stage: [usize; 4]) -> MobileFaceNetConfig {
    MobileFaceNetConfig {
        blocks_per_stage,
        stem_width: 8,
        body_width: 16,
        stem_groups: 4,
        residual_expansion: [8, 8, 16, 16],
        downsample_expansion: [8, 16, 32],
        head_width: 32,
        embedding_size: 16,
        input_size: 48,
    }
}

struct Io {
    input: Tensor<Cpu, 4>,
    expected: Vec<f32>,
    expected_shape: Vec<usize>,
}

fn read_io(name: &str) -> Io {
    let io = StateDict::read_safetensors(&fixture(&format!("{name}.io.safetensors"))).unwrap();
    let input = &io.tensors["input"];
    let output = &io.tensors["output"];
    Io {
        input: Tensor::from_data(TensorData::new(input.values.clone(), input.shape.clone()), &Default::default()),
        expected: output.values.clone(),
        expected_shape: output.shape.clone(),
    }
}

fn assert_matches_reference(name: &str, output: Tensor<Cpu, 2>, io: &Io) {
    assert_eq!(output.dims().to_vec(), io.expected_shape, "{name}: output shape");
    let actual = output.into_data().to_vec::<f32>().unwrap();
    let scale = io.expected.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let max_error = actual.iter().zip(&io.expected).map(|(a, e)| (a - e).abs()).fold(0.0f32, f32::max);
    // Outputs reach |x| ≈ 45; 1e-4 relative to the largest is f32 rounding, not a layer off.
    assert!(max_error <= 1e-4 * scale, "{name}: max |burn − torch| = {max_error} (scale {scale})");
    // The test can fail: the reference output is far from zero.
    assert!(scale > 5.0, "{name}: reference output suspiciously small ({scale})");
}

fn state(name: &str) -> StateDict {
    StateDict::read_safetensors(&fixture(&format!("{name}.safetensors"))).unwrap()
}

#[test]
fn iresnet_insightface_layout_matches_pytorch() {
    let config = tiny_iresnet(IResNetLayout::Insightface);
    let network = config.init::<Cpu>(&Default::default()).unwrap();
    let network = load_state_dict(network, &state("iresnet_tiny_insightface"), |p| config.torch_key(p)).unwrap();
    let io = read_io("iresnet_tiny_insightface");
    assert_matches_reference("insightface", network.forward(io.input.clone()), &io);
}

#[test]
fn iresnet_adaface_layout_matches_pytorch() {
    let config = tiny_iresnet(IResNetLayout::Adaface);
    let network = config.init::<Cpu>(&Default::default()).unwrap();
    // Stages 1 and 2 keep their width (8), so AdaFace subsamples there; stage 3 widens and projects.
    assert!(network.layer1[0].downsample.is_none() && network.layer1[0].shortcut_stride == 2);
    assert!(network.layer2[0].downsample.is_none() && network.layer2[0].shortcut_stride == 2);
    assert!(network.layer3[0].downsample.is_some());
    let network = load_state_dict(network, &state("iresnet_tiny_adaface"), |p| config.torch_key(p)).unwrap();
    let io = read_io("iresnet_tiny_adaface");
    assert_matches_reference("adaface", network.forward(io.input.clone()), &io);
}

#[test]
fn mobilefacenet_matches_pytorch_with_both_stem_variants() {
    for (name, blocks) in [("mobilefacenet_tiny", [1, 2, 1, 1]), ("mobilefacenet_tiny_stage1", [2, 1, 1, 1])] {
        let config = tiny_mobilefacenet(blocks);
        let network = config.init::<Cpu>(&Default::default()).unwrap();
        assert_eq!(network.stem_dw.is_some(), blocks[0] == 1);
        let network = load_state_dict(network, &state(name), |p| Some(visage_nn::mobilefacenet::mobilefacenet_key(p))).unwrap();
        let io = read_io(name);
        assert_matches_reference(name, network.forward(io.input.clone()), &io);
    }
}

#[test]
fn a_checkpoint_of_the_other_layout_is_refused_by_name() {
    let config = tiny_iresnet(IResNetLayout::Adaface);
    let network = config.init::<Cpu>(&Default::default()).unwrap();
    let error = load_state_dict(network, &state("iresnet_tiny_insightface"), |p| config.torch_key(p)).unwrap_err();
    match error {
        NnError::MissingTensor { key, model_path } => {
            assert_eq!(key, "input_layer.0.weight");
            assert_eq!(model_path, "conv1.weight");
        }
        other => panic!("expected a missing tensor, got {other}"),
    }
}

#[test]
fn a_different_embedding_size_is_a_shape_mismatch_naming_the_key() {
    let config = IResNetConfig { embedding_size: 8, ..tiny_iresnet(IResNetLayout::Insightface) };
    let network = config.init::<Cpu>(&Default::default()).unwrap();
    let error = load_state_dict(network, &state("iresnet_tiny_insightface"), |p| config.torch_key(p)).unwrap_err();
    match error {
        NnError::ShapeMismatch { key, expected, found, .. } => {
            assert_eq!(key, "fc.weight");
            assert_eq!(expected, vec![8, 144]);
            assert_eq!(found, vec![16, 144]);
        }
        other => panic!("expected a shape mismatch, got {other}"),
    }
}

#[test]
fn leftover_tensors_are_reported() {
    let config = tiny_iresnet(IResNetLayout::Insightface);
    let network = config.init::<Cpu>(&Default::default()).unwrap();
    let mut with_extra = state("iresnet_tiny_insightface");
    let extra = with_extra.tensors["fc.bias"].clone();
    with_extra.tensors.insert("head.kernel".to_string(), extra);
    let error = load_state_dict(network, &with_extra, |p| config.torch_key(p)).unwrap_err();
    assert!(matches!(&error, NnError::UnusedTensors { count: 1, examples } if examples == &["head.kernel"]), "{error}");
}

#[test]
fn module_prefixes_of_wrapped_checkpoints_strip_off() {
    let plain = state("iresnet_tiny_insightface");
    let mut wrapped = StateDict::default();
    for (key, tensor) in &plain.tensors {
        wrapped.tensors.insert(format!("module.{key}"), tensor.clone());
    }
    assert_eq!(wrapped.strip_prefix("module."), plain);
}

/// insightface trains the feature BatchNorm's shift but keeps its scale at 1:
/// after a backward pass γ has no gradient and β has one, also after loading.
#[test]
fn insightface_feature_scale_stays_out_of_training() {
    let config = tiny_iresnet(IResNetLayout::Insightface);
    let device = Default::default();
    let network = config.init::<CpuAutodiff>(&device).unwrap();
    let network = load_state_dict(network, &state("iresnet_tiny_insightface"), |p| config.torch_key(p)).unwrap();
    let faces = Tensor::<CpuAutodiff, 4>::random([4, 3, 48, 48], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let features = network.forward(faces);
    let gradients = (features.clone() * features).sum().backward();
    assert!(network.features.gamma.val().grad(&gradients).is_none(), "feature BN γ must not train");
    assert!(network.features.beta.val().grad(&gradients).is_some(), "feature BN β trains");
    assert!(network.fc.weight.val().grad(&gradients).is_some());
    // A module clone for the optimiser keeps the flag.
    let reloaded = network.clone().no_grad();
    assert!(!reloaded.features.gamma.is_require_grad());
}
