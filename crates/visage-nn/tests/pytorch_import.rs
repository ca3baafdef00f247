//! `.pth` / `.ckpt` import against files written by real `torch.save`
//! (`scripts/reference/checkpoint_fixtures.py`): the tiny IResNet as
//! insightface, MagFace and AdaFace save it, loaded here and run on the
//! script's input batch, must give PyTorch's eval-mode output.

mod common;

use burn::tensor::{Tensor, TensorData};
use visage_backend::Cpu;
use visage_nn::pytorch::MAGFACE_BN_EPSILON;
use visage_nn::{load_pytorch_checkpoint, read_pytorch_checkpoint, Backbone, BackboneShape, CheckpointFamily, IResNetLayout, NnError, StateDict};

use common::fixture;

/// The tiny IResNet of the reference scripts (tests/common).
fn tiny(layout: IResNetLayout) -> BackboneShape {
    BackboneShape::IResNet(common::tiny_iresnet(layout))
}

/// Max |burn − torch| on the reference input, and the output's largest magnitude.
fn max_error(network: &Backbone<Cpu>, output_key: &str) -> (f32, f32) {
    let io = StateDict::read_safetensors(&fixture("checkpoint_tiny.io.safetensors")).unwrap();
    let input = &io.tensors["input"];
    let expected = &io.tensors[output_key];
    let faces = Tensor::<Cpu, 4>::from_data(TensorData::new(input.values.clone(), input.shape.clone()), &Default::default());
    let output = network.forward(faces);
    assert_eq!(output.dims().to_vec(), expected.shape);
    let actual = output.into_data().to_vec::<f32>().unwrap();
    let error = actual.iter().zip(&expected.values).map(|(a, e)| (a - e).abs()).fold(0.0, f32::max);
    let scale = expected.values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    (error, scale)
}

fn assert_matches(name: &str, network: &Backbone<Cpu>) {
    let (error, scale) = max_error(network, name);
    eprintln!("{name}: max |burn − torch| = {error:.2e} (output scale {scale:.1})");
    // The reference output reaches |x| ≈ 25..45, so a misplaced tensor moves it by far more.
    assert!(scale > 10.0, "{name}: reference output suspiciously small ({scale})");
    assert!(error < 1e-4, "{name}: max |burn − torch| = {error} (output scale {scale})");
}

#[test]
fn insightface_state_dict_matches_pytorch() {
    let shape = tiny(IResNetLayout::Insightface);
    let path = fixture("checkpoint_tiny_insightface.pth");
    let network = load_pytorch_checkpoint::<Cpu>(&path, CheckpointFamily::Auto, &shape, &Default::default()).unwrap();
    assert_matches("insightface", &network);
    let checkpoint = read_pytorch_checkpoint(&path, CheckpointFamily::Auto).unwrap();
    assert_eq!(checkpoint.family, CheckpointFamily::Insightface);
    assert!(checkpoint.dropped_keys.is_empty());
    assert_eq!(checkpoint.state.tensors["fc.weight"].shape, vec![16, 144]);
}

#[test]
fn magface_checkpoint_matches_pytorch_including_its_bn_epsilon() {
    let shape = tiny(IResNetLayout::Insightface);
    let path = fixture("checkpoint_tiny_magface.pth");
    for family in [CheckpointFamily::Auto, CheckpointFamily::Magface] {
        let network = load_pytorch_checkpoint::<Cpu>(&path, family, &shape, &Default::default()).unwrap();
        assert_matches("magface", &network);
    }
    let checkpoint = read_pytorch_checkpoint(&path, CheckpointFamily::Auto).unwrap();
    assert_eq!(checkpoint.family, CheckpointFamily::Magface);
    assert_eq!(checkpoint.dropped_keys, vec!["fc.weight".to_string()], "the MagLinear head is not the backbone's fc");

    // Without the ε correction the fixture's small running variances move the
    // output well past the tolerance: the correction is what makes it match.
    let mut uncorrected = checkpoint.state.clone();
    let shift = (MAGFACE_BN_EPSILON - 1e-5) as f32;
    for (key, tensor) in &mut uncorrected.tensors {
        if key.ends_with("running_var") {
            tensor.values.iter_mut().for_each(|v| *v -= shift);
        }
    }
    let network = shape.init::<Cpu>(&Default::default()).unwrap().load_state_dict(&shape, &uncorrected).unwrap();
    let (error, _) = max_error(&network, "magface");
    eprintln!("magface without the ε correction: max error {error:.2e}");
    assert!(error > 1e-2, "the ε difference should matter on this fixture, error {error}");
}

#[test]
fn adaface_lightning_checkpoint_matches_pytorch() {
    let shape = tiny(IResNetLayout::Adaface);
    let path = fixture("checkpoint_tiny_adaface.ckpt");
    let network = load_pytorch_checkpoint::<Cpu>(&path, CheckpointFamily::Auto, &shape, &Default::default()).unwrap();
    assert_matches("adaface", &network);
    let checkpoint = read_pytorch_checkpoint(&path, CheckpointFamily::Adaface).unwrap();
    assert_eq!(checkpoint.family, CheckpointFamily::Adaface);
    assert_eq!(checkpoint.dropped_keys, ["head.kernel", "head.t", "head.batch_mean", "head.batch_std"]);
}

#[test]
fn an_adaface_checkpoint_needs_the_adaface_layout() {
    let shape = tiny(IResNetLayout::Insightface);
    let path = fixture("checkpoint_tiny_adaface.ckpt");
    let error = load_pytorch_checkpoint::<Cpu>(&path, CheckpointFamily::Auto, &shape, &Default::default()).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("adaface checkpoint") && message.contains("`adaface`"), "{message}");
}

#[test]
fn a_checkpoint_of_another_architecture_lists_missing_and_unexpected_keys() {
    // One block in stage 1 instead of two: the checkpoint's layer1.1.* are unexpected.
    let BackboneShape::IResNet(mut config) = tiny(IResNetLayout::Insightface) else { unreachable!() };
    config.blocks_per_stage = [1, 2, 1, 1];
    let shape = BackboneShape::IResNet(config);
    let path = fixture("checkpoint_tiny_insightface.pth");
    let error = load_pytorch_checkpoint::<Cpu>(&path, CheckpointFamily::Insightface, &shape, &Default::default()).unwrap_err();
    let NnError::Checkpoint { path: at, family, source } = &error else { panic!("expected a checkpoint error, got {error}") };
    assert_eq!(at, &path);
    assert_eq!(family, "insightface");
    match source.as_ref() {
        NnError::KeyMismatch { missing, missing_examples, unexpected, unexpected_examples } => {
            // layer2.1: bn1 (4), conv1, bn2 (4), prelu, conv2, bn3 (4) = 15 tensors each way.
            assert_eq!((*missing, *unexpected), (15, 15), "{error}");
            assert!(missing_examples.iter().all(|key| key.starts_with("layer2.1.")), "{missing_examples:?}");
            assert!(unexpected_examples.iter().all(|key| key.starts_with("layer1.1.")), "{unexpected_examples:?}");
            assert_eq!(missing_examples.len(), 5);
        }
        other => panic!("expected a key mismatch, got {other}"),
    }
    let message = error.to_string();
    assert!(message.contains("checkpoint_tiny_insightface.pth") && message.contains("15 key(s) missing"), "{message}");
}

#[test]
fn dtypes_offsets_and_shared_storages_are_read_exactly() {
    let checkpoint = read_pytorch_checkpoint(&fixture("checkpoint_views.pth"), CheckpointFamily::Insightface).unwrap();
    let tensors = &checkpoint.state.tensors;
    assert_eq!(tensors["half"].values, [1.0, -2.5, 65504.0]);
    assert_eq!(tensors["bfloat"].shape, [2, 2]);
    assert_eq!(tensors["bfloat"].values, [1.5, -3.0, 0.15625, 256.0]);
    assert_eq!(tensors["double"].values, [0.1f32, 2.0]);
    assert_eq!(tensors["base"].values, (0..10).map(|n| n as f32).collect::<Vec<_>>());
    // base[3:7].view(2, 2): storage offset 3 into the same storage
    assert_eq!(tensors["window"].shape, [2, 2]);
    assert_eq!(tensors["window"].values, [3.0, 4.0, 5.0, 6.0]);
    // the int64 scalar (as num_batches_tracked) is read but not kept
    assert!(!tensors.contains_key("steps"));
}

#[test]
fn a_non_contiguous_tensor_is_refused_by_key() {
    let error = read_pytorch_checkpoint(&fixture("checkpoint_noncontiguous.pth"), CheckpointFamily::Auto).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("'weight' is not contiguous") && message.contains("stride [1, 3]"), "{message}");
}

#[test]
fn the_legacy_format_is_refused_with_the_fix() {
    let error = read_pytorch_checkpoint(&fixture("checkpoint_legacy.pth"), CheckpointFamily::Auto).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("checkpoint_legacy.pth") && message.contains("legacy") && message.contains("re-save"), "{message}");
}

#[test]
fn truncated_and_foreign_files_are_refused() {
    let bytes = std::fs::read(fixture("checkpoint_tiny_insightface.pth")).unwrap();
    let dir = std::env::temp_dir();
    let truncated = dir.join(format!("visage-nn-truncated-{}.pth", std::process::id()));
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let message = read_pytorch_checkpoint(&truncated, CheckpointFamily::Auto).unwrap_err().to_string();
    assert!(message.contains(&*truncated.to_string_lossy()) && message.contains("truncated"), "{message}");
    std::fs::remove_file(&truncated).unwrap();

    let message = read_pytorch_checkpoint(&fixture("checkpoint_tiny.io.safetensors"), CheckpointFamily::Auto).unwrap_err().to_string();
    assert!(message.contains("not a PyTorch checkpoint"), "{message}");
    let missing = fixture("no_such_checkpoint.pth");
    assert!(matches!(read_pytorch_checkpoint(&missing, CheckpointFamily::Auto), Err(NnError::Io { .. })));
}
