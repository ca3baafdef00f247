//! Recogniser parity with the independent reference (onnxruntime in Python on
//! the same aligned crops): every shared recogniser, in both channel orders,
//! must reproduce `reference/emb_scrfd_2.5g_bnkps__<model>_<RGB|BGR>.npz`.

mod common;

use visage_infer::{ChannelOrder, FaceEmbedding, Recognizer, RecognizerConfig};

const MODELS: [&str; 3] = ["arcface_mobileface_128d_paddle", "faceplugin_fr_feature_512d", "mobilefacenet_128d_pixamatch"];

fn config(model: &str) -> RecognizerConfig {
    RecognizerConfig::load(&common::repo_models_dir().join(format!("{model}.toml"))).unwrap()
}

fn recognizer(config: &RecognizerConfig) -> Recognizer {
    Recognizer::from_config(config, &common::shared_data().join("models")).unwrap()
}

fn aligned_crops(paths: &[String]) -> Vec<image::RgbImage> {
    paths.iter().map(|p| image::open(common::aligned_reference_path(p)).unwrap().to_rgb8()).collect()
}

/// Mean cosine over same-identity and different-identity pairs.
fn genuine_impostor(embeddings: &[Vec<f32>], ids: &[String]) -> (f64, f64) {
    let (mut genuine, mut impostor) = ((0.0, 0usize), (0.0, 0usize));
    for i in 0..embeddings.len() {
        for j in i + 1..embeddings.len() {
            let cos: f32 = embeddings[i].iter().zip(&embeddings[j]).map(|(a, b)| a * b).sum();
            let bucket = if ids[i] == ids[j] { &mut genuine } else { &mut impostor };
            bucket.0 += f64::from(cos);
            bucket.1 += 1;
        }
    }
    (genuine.0 / genuine.1 as f64, impostor.0 / impostor.1 as f64)
}

#[test]
fn every_recogniser_matches_the_reference_in_both_channel_orders() {
    for model in MODELS {
        for order in [ChannelOrder::Rgb, ChannelOrder::Bgr] {
            let mut config = config(model);
            let normalization = config.normalization.as_mut().unwrap();
            normalization.channel_order = order;
            let suffix = if order == ChannelOrder::Rgb { "RGB" } else { "BGR" };
            let reference = common::reference_embeddings(&format!("emb_scrfd_2.5g_bnkps__{model}_{suffix}.npz"));
            let ours = recognizer(&config).embed(&aligned_crops(&reference.paths)).unwrap();

            let mut worst = (1.0f32, String::new());
            for (face, (row, path)) in ours.iter().zip(reference.emb.outer_iter().zip(&reference.paths)) {
                assert_eq!(face.embedding.len(), row.len(), "{model}: embedding size");
                let cos: f32 = face.embedding.iter().zip(row).map(|(a, b)| a * b).sum();
                if cos < worst.0 {
                    worst = (cos, path.clone());
                }
            }
            let ours_unit: Vec<Vec<f32>> = ours.iter().map(|f| f.embedding.clone()).collect();
            let theirs: Vec<Vec<f32>> = reference.emb.outer_iter().map(|r| r.to_vec()).collect();
            let (genuine, impostor) = genuine_impostor(&ours_unit, &reference.ids);
            let (ref_genuine, ref_impostor) = genuine_impostor(&theirs, &reference.ids);
            let norms: Vec<f32> = ours.iter().map(|f| f.norm).collect();
            eprintln!(
                "{model} {suffix}: {} faces, dim {}, lowest cosine to reference {:.6} ({}); genuine {genuine:.4} / impostor {impostor:.4} (reference {ref_genuine:.4} / {ref_impostor:.4}); feature norm {:.2}–{:.2}",
                ours.len(),
                ours[0].embedding.len(),
                worst.0,
                worst.1,
                norms.iter().cloned().fold(f32::INFINITY, f32::min),
                norms.iter().cloned().fold(0.0, f32::max),
            );
            assert!(worst.0 >= 0.9999, "{model} {suffix}: {} has cosine {} to the reference", worst.1, worst.0);
            assert!((genuine - ref_genuine).abs() < 1e-3 && (impostor - ref_impostor).abs() < 1e-3);
            assert!(genuine > impostor + 0.3, "{model} {suffix}: genuine {genuine} vs impostor {impostor}");
        }
    }
}

#[test]
fn the_configured_orders_reproduce_the_readme_separation() {
    // shared/data/README.md: SCRFD-2.5G + Paddle ArcFace (RGB) gives mean cosine 0.748 same vs 0.012 different.
    let reference = common::reference_embeddings("emb_scrfd_2.5g_bnkps__arcface_mobileface_128d_paddle_RGB.npz");
    let ours = recognizer(&config(MODELS[0])).embed(&aligned_crops(&reference.paths)).unwrap();
    let unit: Vec<Vec<f32>> = ours.into_iter().map(|f| f.embedding).collect();
    let (genuine, impostor) = genuine_impostor(&unit, &reference.ids);
    assert!((genuine - 0.748).abs() < 0.001 && (impostor - 0.012).abs() < 0.001, "{genuine} / {impostor}");
}

#[test]
fn dynamic_batches_equal_single_faces_and_fixed_batch_models_loop() {
    let reference = common::reference_embeddings("emb_scrfd_2.5g_bnkps__arcface_mobileface_128d_paddle_RGB.npz");
    let faces = aligned_crops(&reference.paths[..7]);
    let paddle = config(MODELS[0]);
    let batched = recognizer(&paddle).with_max_batch(4).embed(&faces).unwrap();
    let single = recognizer(&paddle).with_max_batch(1).embed(&faces).unwrap();
    assert_eq!(batched.len(), 7);
    for (b, s) in batched.iter().zip(&single) {
        assert!(b.cosine(s) > 0.99999 && (b.norm - s.norm).abs() < 1e-3 * s.norm);
    }
    // faceplugin's input is [1, 3, 112, 112]: 7 faces take 7 runs, same results.
    let fixed = recognizer(&config(MODELS[1])).embed(&faces).unwrap();
    assert_eq!(fixed.len(), 7);
    assert!(fixed.iter().all(|f| f.embedding.len() == 512));
}

#[test]
fn flip_tta_averages_the_mirrored_feature() {
    let reference = common::reference_embeddings("emb_scrfd_2.5g_bnkps__mobilefacenet_128d_pixamatch_RGB.npz");
    let faces = aligned_crops(&reference.paths[..3]);
    let mirrored: Vec<_> = faces.iter().map(image::imageops::flip_horizontal).collect();
    let config = config(MODELS[2]);
    let mut plain = recognizer(&config);
    let (a, b) = (plain.embed(&faces).unwrap(), plain.embed(&mirrored).unwrap());
    let mut tta = recognizer(&config).with_flip_tta(true);
    let (with_tta, with_tta_mirrored) = (tta.embed(&faces).unwrap(), tta.embed(&mirrored).unwrap());
    for i in 0..3 {
        let mean: Vec<f32> = a[i].feature.iter().zip(&b[i].feature).map(|(x, y)| (x + y) / 2.0).collect();
        let expected = FaceEmbedding::from_feature(mean);
        assert!(expected.cosine(&with_tta[i]) > 0.99999);
        // The magnitude is the mean feature's norm: on the scale of one pass (at most the mean of the two norms).
        assert!((expected.norm - with_tta[i].norm).abs() < 1e-4 * expected.norm, "{} vs {}", expected.norm, with_tta[i].norm);
        assert!(with_tta[i].norm <= (a[i].norm + b[i].norm) / 2.0 + 1e-4);
        // Averaging a face and its mirror makes the feature mirror-invariant.
        assert!(with_tta[i].cosine(&with_tta_mirrored[i]) > 0.99999);
        assert!(a[i].cosine(&b[i]) < 0.9999, "a mirrored face should not embed identically");
    }
}

#[test]
fn wrong_hash_and_wrong_face_size_are_refused() {
    let mut bad = config(MODELS[0]);
    bad.sha256 = Some("0".repeat(64));
    let err = Recognizer::from_config(&bad, &common::shared_data().join("models")).err().unwrap().to_string();
    assert!(err.contains("arcface_mobileface_128d_paddle.onnx: sha256 0a08a264") && err.contains("expects 0000"), "{err}");
    let err = recognizer(&config(MODELS[0])).embed(&[image::RgbImage::new(100, 112)]).unwrap_err().to_string();
    assert!(err.contains("face 0 is (100, 112), the model wants (112, 112)"), "{err}");
}

#[test]
fn input_and_output_shapes_come_from_the_models() {
    use visage_infer::TensorSpec;
    let paddle = recognizer(&config(MODELS[0]));
    assert_eq!(paddle.model().inputs(), &[TensorSpec { name: "x".into(), dims: vec![None, Some(3), Some(112), Some(112)] }]);
    assert_eq!(paddle.embedding_dim(), Some(128));
    let faceplugin = recognizer(&config(MODELS[1]));
    assert_eq!(faceplugin.model().inputs(), &[TensorSpec { name: "input".into(), dims: vec![Some(1), Some(3), Some(112), Some(112)] }]);
    assert_eq!(faceplugin.embedding_dim(), Some(512));
    assert_eq!(faceplugin.input_size(), (112, 112));
}

#[test]
fn the_bundled_prelu_rewrite_gives_the_original_embeddings() {
    let original = config("arcface_mobileface_128d_paddle");
    let rewritten = config("arcface_mobileface_128d_paddle_fastprelu");
    assert_eq!(original.same_person_cosine, rewritten.same_person_cosine);
    assert_eq!(original.cluster_cosine, rewritten.cluster_cosine);
    let reference = common::reference_embeddings("emb_scrfd_2.5g_bnkps__arcface_mobileface_128d_paddle_RGB.npz");
    let crops = aligned_crops(&reference.paths);
    let ours = recognizer(&original).embed(&crops).unwrap();
    // Raw features of one pass each (the default config turns flip TTA on).
    let fast = Recognizer::from_config(&rewritten, &common::repo_models_dir()).unwrap().with_flip_tta(false).embed(&crops).unwrap();
    let worst = ours.iter().zip(&fast).flat_map(|(a, b)| a.feature.iter().zip(&b.feature).map(|(x, y)| (x - y).abs())).fold(0.0f32, f32::max);
    let largest = ours.iter().flat_map(|a| a.feature.iter().map(|x| x.abs())).fold(0.0f32, f32::max);
    assert!(worst <= 1e-5 * largest, "{} crops: raw features differ by up to {worst} (largest {largest})", crops.len());
}
