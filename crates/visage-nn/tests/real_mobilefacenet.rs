//! Real pretrained MobileFaceNets from ONNX into burn: the Paddle ArcFace
//! model (`models/arcface_mobileface_128d_paddle.onnx`, BatchNorms kept as
//! nodes, weights as `Constant` nodes) and the faceplugin model (PyTorch
//! export, BatchNorms folded into the convolutions) are both the paper's
//! MobileFaceNet (`mbf` at `width_scale = 1`). burn's forward pass on the
//! shared aligned face crops must give ONNX Runtime's embedding of the same
//! file; the third model (ReLU6, a separable stem) is refused naming why.

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use visage_backend::Cpu;
use visage_nn::{load_onnx_weights, read_onnx_mobilefacenet, Arch, Backbone, BackboneConfig, BackboneShape};

fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn paddle_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/arcface_mobileface_128d_paddle.onnx")
}

fn paper_mobilefacenet(embedding_size: usize) -> BackboneShape {
    BackboneConfig { embedding_size, width_scale: Some(1), ..BackboneConfig::new(Arch::Mobilefacenet) }.shape().unwrap()
}

/// Every aligned 112×112 crop under shared/data/reference/aligned, sorted.
fn aligned_crops() -> Vec<(String, image::RgbImage)> {
    let root = shared_data().join("reference/aligned");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .flat_map(|dir| std::fs::read_dir(dir.unwrap().path()).unwrap().map(|f| f.unwrap().path()))
        .collect();
    paths.sort();
    paths.into_iter().map(|p| (p.display().to_string(), image::open(&p).unwrap().to_rgb8())).collect()
}

/// NCHW float faces, `(pixel − mean) / std` in the given channel order.
fn normalise(faces: &[&image::RgbImage], bgr: bool, mean: f32, std: f32) -> (Vec<f32>, Vec<usize>) {
    let side = 112;
    let mut values = vec![0.0f32; faces.len() * 3 * side * side];
    for (n, face) in faces.iter().enumerate() {
        for (x, y, pixel) in face.enumerate_pixels() {
            for c in 0..3 {
                let source = if bgr { 2 - c } else { c };
                values[((n * 3 + c) * side + y as usize) * side + x as usize] = (pixel[source] as f32 - mean) / std;
            }
        }
    }
    (values, vec![faces.len(), 3, side, side])
}

fn burn_features(network: &Backbone<Cpu>, values: &[f32], shape: &[usize]) -> Vec<f32> {
    let faces = Tensor::<Cpu, 4>::from_data(TensorData::new(values.to_vec(), shape.to_vec()), &Default::default());
    network.forward(faces).into_data().to_vec::<f32>().unwrap()
}

struct Agreement {
    min_cosine: f64,
    max_abs_diff: f32,
    max_feature: f32,
}

fn compare(burn: &[f32], ort: &[f32], embedding: usize) -> Agreement {
    assert_eq!(burn.len(), ort.len());
    let mut agreement = Agreement { min_cosine: 1.0, max_abs_diff: 0.0, max_feature: 0.0 };
    for (a, b) in burn.chunks(embedding).zip(ort.chunks(embedding)) {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
        let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        agreement.min_cosine = agreement.min_cosine.min(dot / (norm(a) * norm(b)));
        for (x, y) in a.iter().zip(b) {
            agreement.max_abs_diff = agreement.max_abs_diff.max((x - y).abs());
            agreement.max_feature = agreement.max_feature.max(y.abs());
        }
    }
    agreement
}

/// ONNX Runtime's features of `model` for the normalised batch, one face a
/// run when the model's batch axis is fixed at 1.
fn ort_features(model: &Path, values: &[f32], shape: &[usize], one_at_a_time: bool) -> Vec<f32> {
    let mut session = visage_infer::OnnxModel::load(model).unwrap();
    let per_face = shape[1..].iter().product::<usize>();
    let batches: Vec<(&[f32], usize)> = if one_at_a_time { values.chunks(per_face).map(|c| (c, 1)).collect() } else { vec![(values, shape[0])] };
    let mut features = Vec::new();
    for (chunk, count) in batches {
        let input = ndarray::ArrayD::from_shape_vec(vec![count, shape[1], shape[2], shape[3]], chunk.to_vec()).unwrap();
        let outputs = session.run_f32(input.view()).unwrap();
        features.extend(outputs[0].iter().copied());
    }
    features
}

#[test]
fn paddle_arcface_mobilefacenet_in_burn_equals_onnx_runtime_on_real_faces() {
    let crops = aligned_crops();
    assert!(crops.len() >= 80, "{} aligned crops", crops.len());
    let faces: Vec<&image::RgbImage> = crops.iter().map(|(_, face)| face).collect();
    // models/arcface_mobileface_128d_paddle.toml: RGB, (x − 127.5) / 127.5
    let (values, shape) = normalise(&faces, false, 127.5, 127.5);
    let model_shape = paper_mobilefacenet(128);
    let network = load_onnx_weights::<Cpu>(&paddle_model(), &model_shape, &Default::default()).unwrap();
    let burn = burn_features(&network, &values, &shape);
    let ort = ort_features(&paddle_model(), &values, &shape, false);
    let agreement = compare(&burn, &ort, 128);
    eprintln!(
        "Paddle ArcFace MobileFaceNet, {} real faces: min cosine {:.7}, max |burn − onnxruntime| {:.2e} (features up to {:.1})",
        faces.len(),
        agreement.min_cosine,
        agreement.max_abs_diff,
        agreement.max_feature
    );
    assert!(agreement.min_cosine >= 0.9999, "min cosine {}", agreement.min_cosine);
    assert!(agreement.max_abs_diff < 1e-3 * agreement.max_feature, "max diff {}", agreement.max_abs_diff);
    assert!(agreement.max_feature > 1.0, "features suspiciously small");
}

#[test]
fn faceplugin_folded_export_in_burn_equals_onnx_runtime_on_real_faces() {
    let path = shared_data().join("models/faceplugin_fr_feature_512d.onnx");
    let crops = aligned_crops();
    // a dozen faces keep this test quick (the model's batch axis is fixed at 1)
    let faces: Vec<&image::RgbImage> = crops.iter().step_by(7).map(|(_, face)| face).collect();
    // shared/data/README.md: (x − 127) / 128, BGR
    let (values, shape) = normalise(&faces, true, 127.0, 128.0);
    let model_shape = paper_mobilefacenet(512);
    let network = load_onnx_weights::<Cpu>(&path, &model_shape, &Default::default()).unwrap();
    let burn = burn_features(&network, &values, &shape);
    let ort = ort_features(&path, &values, &shape, true);
    let agreement = compare(&burn, &ort, 512);
    eprintln!(
        "faceplugin MobileFaceNet (folded BN), {} real faces: min cosine {:.7}, max |burn − onnxruntime| {:.2e} (features up to {:.1})",
        faces.len(),
        agreement.min_cosine,
        agreement.max_abs_diff,
        agreement.max_feature
    );
    assert!(agreement.min_cosine >= 0.9999, "min cosine {}", agreement.min_cosine);
    assert!(agreement.max_abs_diff < 1e-3 * agreement.max_feature, "max diff {}", agreement.max_abs_diff);
}

#[test]
fn relu6_mobilefacenet_is_refused_naming_the_activation() {
    let path = shared_data().join("models/mobilefacenet_128d_pixamatch.onnx");
    let BackboneShape::MobileFaceNet(config) = paper_mobilefacenet(128) else { unreachable!() };
    let error = read_onnx_mobilefacenet(&path, &config).unwrap_err().to_string();
    assert!(error.contains("mobilefacenet_128d_pixamatch.onnx") && error.contains("Clip"), "{error}");
}

#[test]
fn wrong_width_or_embedding_is_refused_naming_the_layer() {
    // insightface's default mbf is twice as wide: the stem conv already differs.
    let shape = BackboneConfig { embedding_size: 128, ..BackboneConfig::new(Arch::Mobilefacenet) }.shape().unwrap();
    let error = load_onnx_weights::<Cpu>(&paddle_model(), &shape, &Default::default()).unwrap_err().to_string();
    assert!(error.contains("layers.0.layers.0.weight") || error.contains("stem"), "{error}");
    let shape = paper_mobilefacenet(512);
    let error = load_onnx_weights::<Cpu>(&paddle_model(), &shape, &Default::default()).unwrap_err().to_string();
    assert!(error.contains("features.layers.2.weight") && error.contains("128"), "{error}");
}

/// The imported Paddle model exported by visage (unfolded graph, grouped
/// convolutions, Gemm head) runs in ONNX Runtime like burn and reads back to
/// the same weights.
#[test]
fn mobilefacenet_export_runs_in_onnx_runtime_and_reads_back() {
    let model_shape = paper_mobilefacenet(128);
    let network = load_onnx_weights::<Cpu>(&paddle_model(), &model_shape, &Default::default()).unwrap();
    let path = std::env::temp_dir().join(format!("visage-nn-mbf-export-{}.onnx", std::process::id()));
    std::fs::write(&path, network.to_onnx(&model_shape).unwrap()).unwrap();
    let BackboneShape::MobileFaceNet(config) = &model_shape else { unreachable!() };
    let read_back = read_onnx_mobilefacenet(&path, config).unwrap();
    let written = network.state_dict(&model_shape);
    assert_eq!(read_back.tensors.keys().collect::<Vec<_>>(), written.tensors.keys().collect::<Vec<_>>());
    let differing: Vec<String> = written
        .tensors
        .iter()
        .filter(|(key, tensor)| read_back.tensors[*key] != **tensor)
        .map(|(key, tensor)| {
            let other = &read_back.tensors[key];
            let diff = tensor.values.iter().zip(&other.values).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            format!("{key} {:?}/{:?} max diff {diff:e}", tensor.shape, other.shape)
        })
        .collect();
    assert!(differing.is_empty(), "read back differs: {differing:?}");

    let crops = aligned_crops();
    let faces: Vec<&image::RgbImage> = crops.iter().step_by(10).map(|(_, face)| face).collect();
    let (values, shape) = normalise(&faces, false, 127.5, 127.5);
    let burn = burn_features(&network, &values, &shape);
    let ort = ort_features(&path, &values, &shape, false);
    std::fs::remove_file(&path).unwrap();
    let agreement = compare(&burn, &ort, 128);
    eprintln!("visage MobileFaceNet export: max |onnxruntime − burn| {:.2e}", agreement.max_abs_diff);
    assert!(agreement.max_abs_diff < 1e-4 * agreement.max_feature.max(1.0), "max diff {}", agreement.max_abs_diff);
}
