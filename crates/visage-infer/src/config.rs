//! Recogniser configs: one TOML file per model, naming the ONNX file
//! (relative to a models directory, so configs travel with the repository
//! and weights live wherever the user keeps them), its family and its input
//! normalisation.
//!
//! ```toml
//! name = "arcface_mobileface_128d_paddle"
//! file = "arcface_mobileface_128d_paddle.onnx"
//! sha256 = "0a08…"           # optional: checked when the model is loaded
//! family = "arcface"         # arcface | magface | adaface | other
//! source = "…"               # optional: where the file comes from
//! licence = "Apache-2.0"     # optional: the file's licence
//! [normalization]            # optional for a known family, required for "other"
//! channel_order = "rgb"
//! mean = [127.5, 127.5, 127.5]
//! std = [127.5, 127.5, 127.5]
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{InferError, Result};
use crate::preprocess::Normalization;

pub use visage_image::ModelFamily;

/// One recogniser's TOML config (format in the module docs); unknown keys are refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecognizerConfig {
    /// The model's name, used in messages (a sha256 mismatch names the config by it).
    pub name: String,
    /// The ONNX file, relative to the models directory.
    pub file: PathBuf,
    /// Lower-case hex sha256 of the ONNX file; checked on load when present.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The training recipe; decides the normalisation when `normalization` is absent.
    pub family: ModelFamily,
    /// Overrides the family's normalisation.
    #[serde(default)]
    pub normalization: Option<Normalization>,
    /// Flip test-time augmentation: the feature is the mean of the face's and
    /// its mirror image's features.
    #[serde(default)]
    pub flip_tta: bool,
    /// Cosine similarity at or above which two faces are called the same
    /// person (verification, and the cut of identity clustering). Depends on
    /// the model: each bundled config states where its value comes from.
    #[serde(default)]
    pub same_person_cosine: Option<f32>,
    /// Where `visage analyze` cuts its grouping of faces into persons (mean
    /// cosine between two groups), when it should differ from
    /// `same_person_cosine`: a pair decision and a grouping of many faces
    /// are different operating points.
    #[serde(default)]
    pub cluster_cosine: Option<f32>,
    /// Where the ONNX file comes from (`visage models list` shows it).
    #[serde(default)]
    pub source: Option<String>,
    /// The ONNX file's licence, in a few words.
    #[serde(default)]
    pub licence: Option<String>,
}

impl RecognizerConfig {
    /// Reads and checks a config file. [`InferError::Config`] when the TOML
    /// does not parse into these fields, family `other` has no
    /// `[normalization]`, or a `normalization.std` entry is zero or not finite.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| InferError::io(path, e))?;
        let config: Self = toml::from_str(&text).map_err(|e| InferError::Config { path: path.to_path_buf(), message: e.to_string() })?;
        if config.family == ModelFamily::Other && config.normalization.is_none() {
            return Err(InferError::Config {
                path: path.to_path_buf(),
                message: "family \"other\" needs a [normalization] table (channel_order, mean, std)".into(),
            });
        }
        if let Some(std) = config.normalization.map(|n| n.std) {
            if std.iter().any(|s| !(s.is_finite() && *s != 0.0)) {
                return Err(InferError::Config {
                    path: path.to_path_buf(),
                    message: format!("normalization.std {std:?} must be finite and non-zero"),
                });
            }
        }
        Ok(config)
    }

    /// The normalisation to apply: the config's own, else the family's.
    pub fn normalization(&self) -> Normalization {
        self.normalization.unwrap_or(self.family.normalization())
    }

    /// `models_dir` joined with `file` (an absolute `file` is kept as it is).
    pub fn model_path(&self, models_dir: &Path) -> PathBuf {
        models_dir.join(&self.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::ChannelOrder;

    fn parse(text: &str) -> Result<RecognizerConfig> {
        // A name per call: tests run in parallel, and two texts may share a length.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("visage-config-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let config = RecognizerConfig::load(&path);
        std::fs::remove_file(&path).unwrap();
        config
    }

    #[test]
    fn family_defaults_and_overrides() {
        let magface = parse("name = \"m\"\nfile = \"m.onnx\"\nfamily = \"magface\"\n").unwrap();
        assert_eq!(magface.normalization(), Normalization::MAGFACE);
        assert!(!magface.flip_tta);
        let custom = parse(
            "name = \"c\"\nfile = \"c.onnx\"\nfamily = \"other\"\nflip_tta = true\n[normalization]\nchannel_order = \"bgr\"\nmean = [127.0, 127.0, 127.0]\nstd = [128.0, 128.0, 128.0]\n",
        )
        .unwrap();
        assert_eq!(custom.normalization(), Normalization { channel_order: ChannelOrder::Bgr, mean: [127.0; 3], std: [128.0; 3] });
        assert_eq!(custom.model_path(Path::new("/models")), PathBuf::from("/models/c.onnx"));
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let err = parse("name = \"c\"\nfile = \"c.onnx\"\nfamily = \"other\"\n").unwrap_err().to_string();
        assert!(err.contains(".toml: invalid recogniser config: family \"other\" needs a [normalization]"), "{err}");
        let err = parse("name = \"c\"\nfile = \"c.onnx\"\nfamily = \"cosface\"\n").unwrap_err().to_string();
        assert!(err.contains("invalid recogniser config") && err.contains("cosface"), "{err}");
    }
}
