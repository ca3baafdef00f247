//! Verification during training: the insightface protocol on `.bin` sets
//! (LFW, CFP-FP, AgeDB-30, …) every N steps, as arcface_torch's
//! `CallBackVerification` does — each image and its mirror embedded by the
//! network in eval mode, summed, L2-normalised, and visage-eval's 10-fold
//! accuracy on the squared distances.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use ndarray::Array2;
use visage_data::{DecodeOptions, Normalization};
use visage_eval::io::verification_bin::read_verification_bin;
use visage_eval::verification::{combine_with_flip, kfold_accuracy, squared_distances, VerificationConfig, VerificationResult};
use visage_image::RgbImage;
use visage_nn::Backbone;

use crate::error::{Result, TrainError};

/// One decoded verification set, ready to embed.
pub struct VerificationSet {
    /// The file's stem (`lfw` for `lfw.bin`), as logged in `verification.csv`.
    pub name: String,
    /// The `.bin` file.
    pub path: PathBuf,
    faces: Vec<RgbImage>,
    issame: Vec<bool>,
}

impl VerificationSet {
    /// Reads a `.bin` set and decodes its images, resized to `side`² when they are not.
    pub fn load(path: &Path, side: u32) -> Result<Self> {
        let set = read_verification_bin(path).map_err(|e| TrainError::Config { path: path.to_path_buf(), message: e.to_string() })?;
        let mut faces = Vec::with_capacity(set.images.len());
        for (i, bytes) in set.images.iter().enumerate() {
            let name = PathBuf::from(format!("{}#image {i}", path.display()));
            let image = visage_image::decode_rgb(bytes, &name, &DecodeOptions::default())
                .map_err(|e| TrainError::Config { path: path.to_path_buf(), message: e.to_string() })?;
            faces.push(if image.dimensions() == (side, side) {
                image
            } else {
                image::imageops::resize(&image, side, side, image::imageops::FilterType::Triangle)
            });
        }
        let name = path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned());
        Ok(Self { name, path: path.to_path_buf(), faces, issame: set.issame })
    }

    /// Pairs in the set (each two consecutive images).
    pub fn pairs(&self) -> usize {
        self.issame.len()
    }

    /// The protocol's accuracy for `backbone` (an eval-mode network).
    pub fn evaluate<B: Backend>(&self, backbone: &Backbone<B>, normalization: Normalization, batch: usize, device: &B::Device) -> VerificationResult {
        let plain = embed(backbone, &self.faces, normalization, false, batch, device);
        let mirrored = embed(backbone, &self.faces, normalization, true, batch, device);
        let embeddings = combine_with_flip(&plain, Some(&mirrored));
        let pairs: Vec<(usize, usize)> = (0..self.issame.len()).map(|i| (2 * i, 2 * i + 1)).collect();
        let distances = squared_distances(&embeddings, &pairs);
        kfold_accuracy(&distances, &self.issame, &VerificationConfig::default())
    }
}

/// Raw features of `faces` (mirrored when asked), in batches, as f64 rows
/// for visage-eval's metrics ([`visage_nn::embed::embed_faces`]).
pub fn embed<B: Backend>(
    backbone: &Backbone<B>,
    faces: &[RgbImage],
    normalization: Normalization,
    mirror: bool,
    batch: usize,
    device: &B::Device,
) -> Array2<f64> {
    visage_nn::embed::embed_faces(backbone, faces, &normalization, mirror, batch, device).mapv(f64::from)
}
