//! Where models are found: short names and config names resolved to config
//! files, and ONNX files looked up along a search path of folders.
//!
//! A config (`models/NAME.toml`) names its ONNX file relative to a models
//! folder; the registry holds the folder of configs and the ordered list of
//! folders searched for the files, so every command and the service resolve
//! `--detector`, `--recognizer` and `--models-dir` the same way. Which
//! folders those are is the caller's choice (the binary passes
//! `$VISAGE_MODELS_DIR` and its bundled folders).

use std::path::{Path, PathBuf};

use crate::config::RecognizerConfig;
use crate::detector::DetectorConfig;
use crate::error::Result;

/// The default recogniser's config name: ArcFace MobileFaceNet 128-d (Paddle
/// export) with its PRelu nodes rewritten for ONNX Runtime.
pub const DEFAULT_RECOGNIZER: &str = "arcface_mobileface_128d_paddle_fastprelu";

/// The default detector's short name (YuNet-2023mar with free input dims).
pub const DEFAULT_DETECTOR: &str = "yunet";

/// Short detector names and the configs they stand for.
pub const DETECTOR_ALIASES: [(&str, &str); 2] = [("scrfd", "scrfd_2.5g_bnkps"), ("yunet", "face_detection_yunet_2023mar_dynamic")];

/// The folder of model configs and the folders searched for model files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRegistry {
    /// Where `NAME.toml` configs live.
    pub configs_dir: PathBuf,
    /// Folders searched in order for the ONNX file a config names; the
    /// first that has it wins. Never empty.
    pub search_dirs: Vec<PathBuf>,
}

impl ModelRegistry {
    /// A registry over `configs_dir`, searching `search_dirs` in order (the
    /// configs folder itself when the list is empty).
    pub fn new(configs_dir: impl Into<PathBuf>, search_dirs: Vec<PathBuf>) -> Self {
        let configs_dir = configs_dir.into();
        let search_dirs = if search_dirs.is_empty() { vec![configs_dir.clone()] } else { search_dirs };
        Self { configs_dir, search_dirs }
    }

    /// `NAME` → `configs_dir/NAME.toml`; anything ending in `.toml` is a path, kept as it is.
    pub fn config_path(&self, choice: &str) -> PathBuf {
        if choice.ends_with(".toml") {
            PathBuf::from(choice)
        } else {
            self.configs_dir.join(format!("{choice}.toml"))
        }
    }

    /// A detector choice (a short name of [`DETECTOR_ALIASES`], a config
    /// name or a `.toml` path) → its config file.
    pub fn detector_config_path(&self, choice: &str) -> PathBuf {
        match DETECTOR_ALIASES.iter().find(|(alias, _)| *alias == choice) {
            Some((_, name)) => self.config_path(name),
            None => self.config_path(choice),
        }
    }

    /// Reads the detector config a choice names.
    pub fn detector_config(&self, choice: &str) -> Result<DetectorConfig> {
        DetectorConfig::load(&self.detector_config_path(choice))
    }

    /// Reads the recogniser config a choice (config name or `.toml` path) names.
    pub fn recognizer_config(&self, choice: &str) -> Result<RecognizerConfig> {
        RecognizerConfig::load(&self.config_path(choice))
    }

    /// The folder holding `file`: the first search folder that has it, else
    /// the first search folder (so an error names where it was expected).
    pub fn models_dir_for(&self, file: &Path) -> PathBuf {
        self.search_dirs.iter().find(|d| d.join(file).is_file()).unwrap_or(&self.search_dirs[0]).clone()
    }

    /// `file` in the first search folder that has it (see [`Self::models_dir_for`]).
    pub fn model_path(&self, file: &Path) -> PathBuf {
        self.models_dir_for(file).join(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_and_the_search_order() {
        let root = std::env::temp_dir().join(format!("visage-registry-{}", std::process::id()));
        let (first, second) = (root.join("a"), root.join("b"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        std::fs::write(second.join("m.onnx"), b"x").unwrap();
        let registry = ModelRegistry::new(root.join("configs"), vec![first.clone(), second.clone()]);
        assert_eq!(registry.config_path("r"), root.join("configs/r.toml"));
        assert_eq!(registry.config_path("/x/y.toml"), PathBuf::from("/x/y.toml"));
        assert_eq!(registry.detector_config_path("yunet"), root.join("configs/face_detection_yunet_2023mar_dynamic.toml"));
        assert_eq!(registry.detector_config_path("scrfd"), root.join("configs/scrfd_2.5g_bnkps.toml"));
        assert_eq!(registry.detector_config_path("other"), root.join("configs/other.toml"));
        assert_eq!(registry.models_dir_for(Path::new("m.onnx")), second);
        assert_eq!(registry.models_dir_for(Path::new("missing.onnx")), first);
        assert_eq!(ModelRegistry::new(&root, Vec::new()).search_dirs, vec![root.clone()]);
        std::fs::remove_dir_all(root).unwrap();
    }
}
