//! `FacePipeline::faces_in_image` (a photo already in memory, as a service
//! receives it) must give what `FacePipeline::run` gives for the same file,
//! and a detector/recogniser limited to one intra-op thread the same numbers.

use std::path::{Path, PathBuf};

use visage_infer::{decode_rgb, DecodeOptions, Detector, DetectorConfig, FacePipeline, InferError, PipelineOptions, Recognizer, RecognizerConfig};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pipeline(threads: Option<usize>) -> FacePipeline {
    let models = repo().join("models");
    let detector_config = DetectorConfig::load(&models.join("face_detection_yunet_2023mar.toml")).unwrap();
    let recognizer_config = RecognizerConfig::load(&models.join("arcface_mobileface_128d_paddle.toml")).unwrap();
    let detector = Detector::from_config_with_threads(&detector_config, &models, threads).unwrap();
    let recognizer = Recognizer::from_config_with_threads(&recognizer_config, &models, threads).unwrap();
    FacePipeline::new(Some(detector), recognizer, PipelineOptions::default())
}

#[test]
fn in_memory_photo_gives_what_the_file_pipeline_gives() {
    let photo = repo().join("examples/photos/obama_and_biden.jpg");
    let mut from_files = None;
    pipeline(None).run(std::slice::from_ref(&photo), |outcome| from_files = Some(outcome.result.unwrap()));
    let from_files = from_files.unwrap();
    // Two people (and whatever else YuNet scores above its threshold).
    assert!(from_files.faces.len() >= 2, "{} faces", from_files.faces.len());

    let bytes = std::fs::read(&photo).unwrap();
    let image = decode_rgb(&bytes, &photo, &DecodeOptions::default()).unwrap();
    let in_memory = pipeline(Some(1)).faces_in_image(&photo, &image).unwrap();
    assert_eq!(in_memory.size, from_files.size);
    assert_eq!(in_memory.faces.len(), from_files.faces.len());
    for (a, b) in in_memory.faces.iter().zip(&from_files.faces) {
        for (x, y) in a.bbox.iter().zip(&b.bbox) {
            assert!((x - y).abs() < 1e-3, "boxes {:?} vs {:?}", a.bbox, b.bbox);
        }
        // One thread or many: the same model on the same crop, up to summation order.
        let cosine: f32 = a.embedding.embedding.iter().zip(&b.embedding.embedding).map(|(x, y)| x * y).sum();
        assert!(cosine > 0.9999, "cosine {cosine}");
        assert!((a.embedding.norm - b.embedding.norm).abs() < 1e-3 * b.embedding.norm);
    }
}

#[test]
fn in_memory_photo_without_a_face_is_no_face() {
    let blank = image::RgbImage::from_pixel(200, 150, image::Rgb([90, 90, 90]));
    let err = pipeline(Some(1)).faces_in_image(Path::new("upload"), &blank).unwrap_err();
    assert!(matches!(err, InferError::NoFace { .. }), "{err}");
    assert_eq!(err.to_string(), "upload: no face found");
}
