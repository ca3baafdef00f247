//! Fixtures the store tests share: a 16-d gallery config and deterministic faces.
#![allow(dead_code)]

use std::path::PathBuf;

use visage_gallery::{DecisionThreshold, FaceSample, GalleryConfig, QualityPolicy};

pub const DIM: usize = 16;

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-gallery-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn config() -> GalleryConfig {
    let quality = QualityPolicy { min_magnitude: Some(5.0), min_face_px: 20.0 };
    GalleryConfig::new(DIM, "test-recogniser", quality, DecisionThreshold::manual(0.5).unwrap())
}

/// A deterministic unit vector per (person, face): person `p`'s faces all
/// lean towards axis `p % DIM`, so they are alike and unlike other people.
pub fn embedding(person: usize, face: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIM).map(|j| 0.05 * ((person * 31 + face * 7 + j) as f32).sin()).collect();
    v[person % DIM] += 1.0;
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

pub fn face(person: usize, index: usize, magnitude: f32) -> FaceSample {
    FaceSample { embedding: embedding(person, index), magnitude, bbox: Some([0.0, 0.0, 50.0, 60.0]), source: format!("p{person}_f{index}.jpg") }
}
