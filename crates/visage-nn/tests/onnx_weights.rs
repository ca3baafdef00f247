//! IResNet weights from ONNX exports written by PyTorch's exporter
//! (`scripts/reference/checkpoint_fixtures.py`: eval mode, opset 11, as
//! insightface's torch2onnx.py exports; conv → BN pairs folded into the
//! convolutions), and the visage export read back.

mod common;

use burn::tensor::{Tensor, TensorData};
use visage_backend::Cpu;
use visage_nn::onnx::proto;
use visage_nn::{
    load_onnx_weights, load_pytorch_checkpoint, read_onnx_iresnet, Backbone, BackboneShape, CheckpointFamily, IResNetConfig, IResNetLayout, StateDict,
};

use common::fixture;

fn tiny_config(layout: IResNetLayout) -> IResNetConfig {
    common::tiny_iresnet(layout)
}

fn max_error(network: &Backbone<Cpu>, output_key: &str) -> f32 {
    let io = StateDict::read_safetensors(&fixture("checkpoint_tiny.io.safetensors")).unwrap();
    let input = &io.tensors["input"];
    let expected = &io.tensors[output_key];
    let faces = Tensor::<Cpu, 4>::from_data(TensorData::new(input.values.clone(), input.shape.clone()), &Default::default());
    let actual = network.forward(faces).into_data().to_vec::<f32>().unwrap();
    assert_eq!(actual.len(), expected.values.len());
    actual.iter().zip(&expected.values).map(|(a, e)| (a - e).abs()).fold(0.0, f32::max)
}

#[test]
fn folded_insightface_export_matches_pytorch() {
    let path = fixture("iresnet_tiny_insightface.onnx");
    // The fixture really is folded: its convolutions carry biases and no BN reads a conv's output.
    let graph = proto::read_model(&std::fs::read(&path).unwrap()).unwrap();
    let convs: Vec<_> = graph.nodes.iter().filter(|n| n.op_type == "Conv").collect();
    assert!(convs.iter().all(|conv| conv.inputs.len() == 3), "expected a folded export");
    assert_eq!(graph.nodes.iter().filter(|n| n.op_type == "BatchNormalization").count(), 5 + 2);

    let shape = BackboneShape::IResNet(tiny_config(IResNetLayout::Insightface));
    let network = load_onnx_weights::<Cpu>(&path, &shape, &Default::default()).unwrap();
    let error = max_error(&network, "insightface");
    eprintln!("insightface ONNX import: max |burn − torch| = {error:.2e}");
    assert!(error < 1e-4, "max error {error}");
}

#[test]
fn folded_adaface_export_with_the_shortcut_first_matches_pytorch() {
    let path = fixture("iresnet_tiny_adaface.onnx");
    let graph = proto::read_model(&std::fs::read(&path).unwrap()).unwrap();
    assert!(graph.nodes.iter().any(|n| n.op_type == "MaxPool"), "AdaFace subsamples its stage-1 shortcut");
    let shape = BackboneShape::IResNet(tiny_config(IResNetLayout::Adaface));
    let network = load_onnx_weights::<Cpu>(&path, &shape, &Default::default()).unwrap();
    let error = max_error(&network, "adaface");
    eprintln!("adaface ONNX import: max |burn − torch| = {error:.2e}");
    assert!(error < 1e-4, "max error {error}");
}

#[test]
fn another_architecture_is_refused_naming_what_differs() {
    let path = fixture("iresnet_tiny_insightface.onnx");
    let fewer = IResNetConfig { blocks_per_stage: [1, 1, 1, 1], ..tiny_config(IResNetLayout::Insightface) };
    let message = read_onnx_iresnet(&path, &fewer).unwrap_err().to_string();
    assert!(message.contains("more") && message.contains("different architecture"), "{message}");
    let more = IResNetConfig { blocks_per_stage: [2, 2, 1, 1], ..tiny_config(IResNetLayout::Insightface) };
    let message = read_onnx_iresnet(&path, &more).unwrap_err().to_string();
    assert!(message.contains("lacks 2 3×3 convolutions, 1 BatchNorms, 1 PReLUs"), "{message}");
    // insightface's graph projects in stage 1, AdaFace's layout does not.
    let shape = BackboneShape::IResNet(tiny_config(IResNetLayout::Adaface));
    let message = load_onnx_weights::<Cpu>(&path, &shape, &Default::default()).unwrap_err().to_string();
    assert!(message.contains("projection shortcuts"), "{message}");
    let message = read_onnx_iresnet(&fixture("checkpoint_tiny_insightface.pth"), &fewer).unwrap_err().to_string();
    assert!(message.contains("not a readable ONNX model"), "{message}");
}

/// The exported graph (unfolded, PyTorch key names) reads back to exactly the
/// weights it was written from, for both layouts.
#[test]
fn export_reads_back_to_the_same_weights() {
    for (layout, checkpoint) in
        [(IResNetLayout::Insightface, "checkpoint_tiny_insightface.pth"), (IResNetLayout::Adaface, "checkpoint_tiny_adaface.ckpt")]
    {
        let shape = BackboneShape::IResNet(tiny_config(layout));
        let network = load_pytorch_checkpoint::<Cpu>(&fixture(checkpoint), CheckpointFamily::Auto, &shape, &Default::default()).unwrap();
        let exported = network.to_onnx(&shape).unwrap();
        let path = std::env::temp_dir().join(format!("visage-nn-export-{layout}-{}.onnx", std::process::id()));
        std::fs::write(&path, exported).unwrap();
        let BackboneShape::IResNet(config) = &shape else { unreachable!() };
        let read_back = read_onnx_iresnet(&path, config).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(read_back, network.state_dict(&shape), "{layout}");
    }
}

/// ONNX Runtime (the project's own runtime, visage-infer) runs the exported
/// graph and gives burn's output, for both layouts.
#[test]
fn onnx_runtime_runs_the_export_like_burn() {
    let io = StateDict::read_safetensors(&fixture("checkpoint_tiny.io.safetensors")).unwrap();
    let input = &io.tensors["input"];
    for (layout, checkpoint) in
        [(IResNetLayout::Insightface, "checkpoint_tiny_insightface.pth"), (IResNetLayout::Adaface, "checkpoint_tiny_adaface.ckpt")]
    {
        let shape = BackboneShape::IResNet(tiny_config(layout));
        let network = load_pytorch_checkpoint::<Cpu>(&fixture(checkpoint), CheckpointFamily::Auto, &shape, &Default::default()).unwrap();
        let path = std::env::temp_dir().join(format!("visage-nn-ort-{layout}-{}.onnx", std::process::id()));
        std::fs::write(&path, network.to_onnx(&shape).unwrap()).unwrap();
        let mut model = visage_infer::OnnxModel::load(&path).unwrap();
        let faces = ndarray::ArrayD::from_shape_vec(input.shape.clone(), input.values.clone()).unwrap();
        let outputs = model.run_f32(faces.view()).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs[0].shape(), [2, 16]);
        let faces = Tensor::<Cpu, 4>::from_data(TensorData::new(input.values.clone(), input.shape.clone()), &Default::default());
        let burn = network.forward(faces).into_data().to_vec::<f32>().unwrap();
        let error = outputs[0].iter().zip(&burn).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        let scale = burn.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        eprintln!("{layout}: max |onnxruntime − burn| = {error:.2e} (output scale {scale:.1})");
        assert!(scale > 10.0 && error < 1e-4, "{layout}: max error {error}, scale {scale}");
    }
}
