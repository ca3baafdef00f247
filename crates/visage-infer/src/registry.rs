//! Where models are found: short names and config names resolved to config
//! files, and ONNX files looked up along a search path of folders.
//!
//! A config (`models/NAME.toml`) names its ONNX file relative to a models
//! folder; the registry holds the folder of configs and the ordered list of
//! folders searched for the files, so every command and the service resolve
//! `--detector`, `--recognizer` and `--models-dir` the same way.
//! [`ModelRegistry::standard`] is the one the binary, the service and the
//! Python package use: the configs and default models compiled into the
//! library ([`crate::bundled`]), with `--models-dir` or `$VISAGE_MODELS_DIR`
//! searched first for model files. No path of the source tree is used.

use std::path::{Path, PathBuf};

use crate::bundled::{bundled_config_names, bundled_dir, bundled_file};
use crate::checksum::sha256_hex;
use crate::config::RecognizerConfig;
use crate::detector::{Detector, DetectorConfig};
use crate::error::{InferError, Result};
use crate::recognizer::Recognizer;

/// The environment variable naming folders (a path list, `:`-separated on
/// Unix) searched for model files before the bundled ones.
pub const MODELS_DIR_VAR: &str = "VISAGE_MODELS_DIR";

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
    /// The standard registry: the bundled configs (written into the cache
    /// on first use, [`crate::bundled::bundled_dir`]); model files searched
    /// in `models_dir` when given, else in the folders of
    /// `$VISAGE_MODELS_DIR`, then among the bundled models.
    pub fn standard(models_dir: Option<&Path>) -> Result<Self> {
        let bundled = bundled_dir()?;
        let mut search: Vec<PathBuf> = match models_dir {
            Some(dir) => vec![dir.to_path_buf()],
            None => std::env::var_os(MODELS_DIR_VAR)
                .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
                .unwrap_or_default(),
        };
        search.push(bundled.clone());
        Ok(Self::new(bundled, search))
    }

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

    /// Reads the detector config a choice names. An unknown name is an
    /// [`InferError::DetectorConfig`] listing the known ones.
    pub fn detector_config(&self, choice: &str) -> Result<DetectorConfig> {
        let path = self.detector_config_path(choice);
        if !path.exists() && !choice.ends_with(".toml") {
            let aliases: Vec<&str> = DETECTOR_ALIASES.iter().map(|(alias, _)| *alias).collect();
            let message =
                format!("no detector called `{choice}`: give {}, a config name of `visage models list` or a path to a .toml", aliases.join(", "));
            return Err(InferError::DetectorConfig { path, message });
        }
        DetectorConfig::load(&path)
    }

    /// Reads the recogniser config a choice (config name or `.toml` path)
    /// names. An unknown name is an [`InferError::Config`] listing the known ones.
    pub fn recognizer_config(&self, choice: &str) -> Result<RecognizerConfig> {
        let path = self.config_path(choice);
        if !path.exists() && !choice.ends_with(".toml") {
            let message = format!("no recogniser called `{choice}`: give a config name of `visage models list` or a path to a .toml");
            return Err(InferError::Config { path, message });
        }
        RecognizerConfig::load(&path)
    }

    /// The detector a choice names, loaded from the first search folder that
    /// has its file, with its config's settings (thresholds, second looks).
    pub fn load_detector(&self, choice: &str) -> Result<Detector> {
        self.detector_from_config(&self.detector_config(choice)?)
    }

    /// The detector of a config already read, its file found along the search path.
    pub fn detector_from_config(&self, config: &DetectorConfig) -> Result<Detector> {
        Detector::from_config(config, &self.model_dir(&config.name, &config.file, config.source.as_deref())?)
    }

    /// The recogniser a choice names and its config; `flip_tta` overrides
    /// the config's flip test-time augmentation when given.
    pub fn load_recognizer(&self, choice: &str, flip_tta: Option<bool>) -> Result<(Recognizer, RecognizerConfig)> {
        let config = self.recognizer_config(choice)?;
        Ok((self.recognizer_from_config(&config, flip_tta)?, config))
    }

    /// The recogniser of a config already read, its file found along the
    /// search path; `flip_tta` overrides the config's setting when given.
    pub fn recognizer_from_config(&self, config: &RecognizerConfig, flip_tta: Option<bool>) -> Result<Recognizer> {
        let recognizer = Recognizer::from_config(config, &self.model_dir(&config.name, &config.file, config.source.as_deref())?)?;
        Ok(match flip_tta {
            Some(flip) => recognizer.with_flip_tta(flip),
            None => recognizer,
        })
    }

    /// The search folder holding the model file a config names
    /// ([`Self::locate`]'s folder).
    pub fn model_dir(&self, name: &str, file: &Path, source: Option<&str>) -> Result<PathBuf> {
        let path = self.locate(name, file, source)?;
        Ok(path.parent().map(Path::to_path_buf).unwrap_or_default())
    }

    /// The model file a config names, or an [`InferError::ModelNotFound`] saying
    /// which folders were searched and where the file comes from.
    pub fn locate(&self, name: &str, file: &Path, source: Option<&str>) -> Result<PathBuf> {
        let path = self.model_path(file);
        if path.is_file() {
            return Ok(path);
        }
        let searched: Vec<String> = self.search_dirs.iter().map(|d| d.display().to_string()).collect();
        let from = source.map(|s| format!("\nit comes from: {s}")).unwrap_or_default();
        Err(InferError::ModelNotFound {
            file: file.to_path_buf(),
            message: format!(
                "model `{name}` is not bundled with visage and is in none of: {}\nput {} in a folder given by --models-dir or ${MODELS_DIR_VAR}{from}",
                searched.join(", "),
                file.display()
            ),
        })
    }

    /// Every model the bundled configs name: where it comes from, its
    /// licence, its hash, and whether (and where) its file is present.
    pub fn catalog(&self) -> Vec<CatalogEntry> {
        bundled_config_names().into_iter().filter_map(|name| self.catalog_entry(name)).collect()
    }

    fn catalog_entry(&self, name: &str) -> Option<CatalogEntry> {
        let path = self.configs_dir.join(format!("{name}.toml"));
        let (kind, file, sha256, source, licence) = match DetectorConfig::load(&path) {
            Ok(c) => (ModelKind::Detector, c.file, c.sha256, c.source, c.licence),
            Err(_) => {
                let c = RecognizerConfig::load(&path).ok()?;
                (ModelKind::Recognizer, c.file, c.sha256, c.source, c.licence)
            }
        };
        let bundled = file.to_str().is_some_and(|f| bundled_file(f).is_some());
        let found = self.model_path(&file);
        let status = match std::fs::read(&found) {
            Err(_) => ModelStatus::Missing,
            Ok(bytes) => match &sha256 {
                Some(expected) if sha256_hex(&bytes) != *expected => ModelStatus::HashMismatch,
                _ => ModelStatus::Present,
            },
        };
        let location = (status != ModelStatus::Missing).then_some(found);
        Some(CatalogEntry { name: name.to_string(), kind, file, sha256, source, licence, bundled, status, location })
    }
}

/// What a model does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Finds faces and 5 landmarks.
    Detector,
    /// Turns aligned crops into features.
    Recognizer,
}

/// Whether a model's file is where the registry looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    /// Found, with the sha256 its config names (or none named).
    Present,
    /// Found, but its sha256 is not its config's: loading it would fail.
    HashMismatch,
    /// In none of the search folders.
    Missing,
}

/// One row of `visage models list`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CatalogEntry {
    /// The config name (`--detector`/`--recognizer` take it).
    pub name: String,
    /// Detector or recogniser.
    pub kind: ModelKind,
    /// The ONNX file the config names.
    pub file: PathBuf,
    /// Its sha256, as the config names it.
    pub sha256: Option<String>,
    /// Where it comes from.
    pub source: Option<String>,
    /// Its licence.
    pub licence: Option<String>,
    /// Whether the file travels inside visage.
    pub bundled: bool,
    /// Present, missing, or present with another hash.
    pub status: ModelStatus,
    /// Where the file was found.
    pub location: Option<PathBuf>,
}

impl ModelRegistry {
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
