//! A photo split for fine-tuning experiments and the cleaning demo, with
//! offline degradation of the training copies.
//!
//! [`FaceSplit::prepare`] splits aligned 112×112 crops (one folder per
//! identity) by photo: in every identity with at least three crops, every
//! third crop is held out; the rest become an image folder for `visage
//! train`, each crop written clean and, optionally, once more degraded by one
//! [`Degradation`] at a severity drawn per crop (offline augmentation: the
//! network sees bad faces of every identity, so the feature magnitude has
//! something to learn). `visage train prepare-faces` is its command.

use std::path::{Path, PathBuf};

use image::RgbImage;
use visage_image::{load_rgb, DecodeOptions};

use crate::degrade::Degradation;
use crate::error::{DataError, Result};

/// Severity steps after the clean level on each degradation's ladder.
pub const LADDER_STEPS: usize = 3;

/// The photos of one split.
#[derive(Debug, Clone)]
pub struct FaceSplit {
    /// Identity folder names in sorted order; a face's class is its index here.
    pub class_names: Vec<String>,
    /// The image folder written for training (clean crops, plus one
    /// degraded copy of each unless [`FaceSplit::prepare_with`] says not).
    pub train_dir: PathBuf,
    /// The held-out crops as an image folder (`out_dir/heldout/<identity>/`).
    pub heldout_dir: PathBuf,
    /// Clean training crops with their class: the gallery of the evaluation.
    pub gallery: Vec<(usize, RgbImage)>,
    /// Held-out crops with their class: the probes.
    pub heldout: Vec<(usize, RgbImage)>,
}

/// One severity drawn in (¼, 1] of the ladder's top, fixed by (seed, crop, kind).
fn augmentation_severity(kind: Degradation, top: f64, seed: u64, crop_index: usize) -> f64 {
    let mut state = seed ^ (crop_index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (kind as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
    state ^= state >> 33;
    state = state.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    state ^= state >> 33;
    let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
    top * (0.25 + 0.75 * unit)
}

fn top_severity(kind: Degradation, side: u32) -> f64 {
    *kind.default_severities(side, LADDER_STEPS).last().expect("a ladder has a top")
}

impl FaceSplit {
    /// Reads `aligned_root/<identity>/*.png` and writes the training folder
    /// `out_dir/train/<identity>/` (see the module doc). `seed` fixes the
    /// augmentation severities.
    pub fn prepare(aligned_root: &Path, out_dir: &Path, seed: u64) -> Result<Self> {
        Self::prepare_with(aligned_root, out_dir, seed, true)
    }

    /// [`Self::prepare`], with or without the degraded training copies
    /// (without: a plain photo split, e.g. for `visage clean noise-demo`).
    pub fn prepare_with(aligned_root: &Path, out_dir: &Path, seed: u64, degraded_copies: bool) -> Result<Self> {
        let read_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DataError::io(path, "cannot list", source)
        };
        let mut identities: Vec<PathBuf> = std::fs::read_dir(aligned_root)
            .map_err(read_error(aligned_root))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        identities.sort();
        if identities.is_empty() {
            return Err(DataError::Folder { path: aligned_root.to_path_buf(), message: "no identity folders here".into() });
        }
        let train_dir = out_dir.join("train");
        let heldout_dir = out_dir.join("heldout");
        let _ = std::fs::remove_dir_all(&train_dir);
        let _ = std::fs::remove_dir_all(&heldout_dir);
        let mut split = FaceSplit {
            class_names: Vec::new(),
            train_dir: train_dir.clone(),
            heldout_dir: heldout_dir.clone(),
            gallery: Vec::new(),
            heldout: Vec::new(),
        };
        let mut crop_index = 0;
        for (class, identity) in identities.iter().enumerate() {
            let name = identity.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let mut crops: Vec<PathBuf> = std::fs::read_dir(identity)
                .map_err(read_error(identity))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png") || x.eq_ignore_ascii_case("jpg")))
                .collect();
            crops.sort();
            let class_dir = train_dir.join(&name);
            let heldout_class_dir = heldout_dir.join(&name);
            for dir in [&class_dir, &heldout_class_dir] {
                std::fs::create_dir_all(dir).map_err(|source| DataError::io(dir.as_path(), "cannot create", source))?;
            }
            for (index, path) in crops.iter().enumerate() {
                let face = load_rgb(path, &DecodeOptions::default())?;
                // `<identity>_<photo>`: unique across classes, so a file keeps
                // its name when `visage clean noise-demo` moves it to another class.
                let stem = format!("{name}_{}", path.file_stem().and_then(|s| s.to_str()).unwrap_or("face"));
                let write = |dir: &Path, suffix: &str, image: &RgbImage| -> Result<()> {
                    let target = dir.join(format!("{stem}{suffix}.png"));
                    image.save(&target).map_err(|e| DataError::Folder { path: target.clone(), message: format!("cannot write: {e}") })
                };
                if crops.len() >= 3 && index % 3 == 2 {
                    write(&heldout_class_dir, "", &face)?;
                    split.heldout.push((class, face));
                    continue;
                }
                write(&class_dir, "", &face)?;
                if degraded_copies {
                    // one degraded copy per crop, the kinds taking turns
                    let kind = Degradation::ALL[crop_index % Degradation::ALL.len()];
                    let severity = augmentation_severity(kind, top_severity(kind, face.width()), seed, crop_index);
                    write(&class_dir, &format!("_{}", kind.name()), &kind.apply(&face, severity, seed ^ crop_index as u64))?;
                }
                split.gallery.push((class, face));
                crop_index += 1;
            }
            split.class_names.push(name);
        }
        Ok(split)
    }
}
