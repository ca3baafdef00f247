//! `visage model import` and `visage model export`, through the real binary:
//! the exported graph, run by ONNX Runtime (visage-infer's `OnnxModel`), gives
//! burn's features of the same weights.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::tensor::{Tensor, TensorData};
use visage_backend::Cpu;
use visage_nn::{Backbone, CheckpointFamily};

fn visage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage")).args(args).output().expect("visage runs")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-model-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A deterministic input batch in the normalised range, `[n, 3, side, side]`.
fn faces(n: usize, side: usize) -> (Vec<f32>, Vec<usize>) {
    let values = (0..n * 3 * side * side).map(|i| ((i * 7919 % 255) as f32 - 127.5) / 127.5).collect();
    (values, vec![n, 3, side, side])
}

/// max |onnxruntime − burn| and the largest |feature|.
fn onnx_vs_burn(onnx: &Path, backbone: &Backbone<Cpu>, side: usize) -> (f32, f32) {
    let (values, shape) = faces(2, side);
    let mut model = visage_infer::OnnxModel::load(onnx).unwrap();
    let input = ndarray::ArrayD::from_shape_vec(shape.clone(), values.clone()).unwrap();
    let ort: Vec<f32> = model.run_f32(input.view()).unwrap()[0].iter().copied().collect();
    let tensor = Tensor::<Cpu, 4>::from_data(TensorData::new(values, shape), &Default::default());
    let burn = backbone.forward(tensor).into_data().to_vec::<f32>().unwrap();
    assert_eq!(ort.len(), burn.len());
    let diff = ort.iter().zip(&burn).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    (diff, burn.iter().fold(0.0, |m, v| m.max(v.abs())))
}

#[test]
fn import_the_paddle_model_then_export_it_runs_like_burn() {
    let dir = temp_dir("paddle");
    let weights = dir.join("paddle.safetensors");
    let paddle = repo().join("models/arcface_mobileface_128d_paddle.onnx");
    let out = visage(&[
        "model",
        "import",
        paddle.to_str().unwrap(),
        "--arch",
        "mbf",
        "--width-scale",
        "1",
        "--embedding-size",
        "128",
        "--out",
        weights.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The weights file carries its architecture: export needs no flags.
    let config = visage_nn::read_weights_config(&weights).unwrap();
    assert_eq!((config.width_scale, config.embedding_size), (Some(1), 128));
    let exported = dir.join("paddle_visage.onnx");
    let out = visage(&["model", "export", weights.to_str().unwrap(), "--out", exported.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let shape = config.shape().unwrap();
    let backbone = visage_nn::load_weights::<Cpu>(&weights, CheckpointFamily::Auto, &shape, &Default::default()).unwrap();
    let (diff, scale) = onnx_vs_burn(&exported, &backbone, 112);
    eprintln!("paddle via import/export: max |onnxruntime − burn| = {diff:.2e} (features up to {scale:.2})");
    assert!(scale > 0.5 && diff < 1e-4 * scale.max(1.0), "diff {diff}, scale {scale}");
    // and the original Paddle graph computes the same features
    let (original, _) = onnx_vs_burn(&paddle, &backbone, 112);
    assert!(original < 1e-4 * scale.max(1.0), "original graph differs by {original}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn export_of_a_train_checkpoint_runs_like_its_backbone() {
    let dir = temp_dir("train");
    let digits = repo().join("examples/digits/train");
    let config = format!(
        "out_dir = \"run\"\nepochs = 1\nbatch_size = 128\nseed = 7\n\
         [backbone]\narch = \"iresnet18\"\nembedding_size = 16\nblocks_per_stage = [1, 1, 1, 1]\n\
         stage_widths = [8, 8, 16, 16]\nstem_width = 8\ninput_size = 32\n\
         [head]\nkind = \"arcface\"\ns = 16.0\nm = 0.3\n\
         [data]\nsource = \"{}\"\nflip = false\nthreads = 1\n",
        digits.display()
    );
    std::fs::write(dir.join("train.toml"), config).unwrap();
    let out = visage(&["train", "--config", dir.join("train.toml").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exported = dir.join("tiny.onnx");
    let out = visage(&["model", "export", dir.join("run").to_str().unwrap(), "--out", exported.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (backbone, state) = visage_train::checkpoint::load_backbone::<Cpu>(&dir.join("run"), &Default::default()).unwrap();
    assert!(state.steps_done > 0);
    let (diff, scale) = onnx_vs_burn(&exported, &backbone, 32);
    eprintln!("train checkpoint export: max |onnxruntime − burn| = {diff:.2e} (features up to {scale:.2})");
    assert!(scale > 0.1 && diff < 1e-4 * scale.max(1.0), "diff {diff}, scale {scale}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_inputs_exit_2_naming_the_problem() {
    let dir = temp_dir("bad");
    let paddle = repo().join("models/arcface_mobileface_128d_paddle.onnx");
    // insightface's default mbf is twice as wide as the Paddle model
    let out = visage(&[
        "model",
        "import",
        paddle.to_str().unwrap(),
        "--arch",
        "mbf",
        "--embedding-size",
        "128",
        "--out",
        dir.join("x.safetensors").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("arcface_mobileface_128d_paddle.onnx"), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        visage(&["model", "import", paddle.to_str().unwrap(), "--arch", "r50", "--width-scale", "1", "--out", dir.join("x.onnx").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("width_scale"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = visage(&["model", "export", dir.join("nothing-here").to_str().unwrap(), "--out", dir.join("x.onnx").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing-here"), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}
