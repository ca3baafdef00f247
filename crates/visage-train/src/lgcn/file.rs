//! The model file: the network's weights as safetensors, its widths, subgraph
//! sizes and merge settings as JSON under `visage.lgcn` in the header, so a
//! file alone says how to cluster with it. The bundled default model
//! ([`DEFAULT_MODEL_BYTES`], made by `scripts/lgcn/train_default.sh`) is
//! compiled into the binary.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::backend::Backend;
use visage_eval::cluster::lgcn::{IpsConfig, MergeConfig};
use visage_nn::onnx::state_dict_of;
use visage_nn::{expected_keys, load_state_dict, StateDict};

use super::model::{LgcnConfig, LinkageGcn};

/// Header key of the settings.
pub const SETTINGS_KEY: &str = "visage.lgcn";

/// The bundled default model: trained on the shared photo sets' embeddings
/// (default recogniser, 128-d) and synthetic mixtures fitted to them.
pub const DEFAULT_MODEL_BYTES: &[u8] = include_bytes!("../../models/lgcn_default.safetensors");

/// Errors of L-GCN's files and inputs.
#[derive(Debug, thiserror::Error)]
pub enum LgcnError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A model file that is not one (or not whole).
    #[error("{path}: {problem}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Inputs that do not fit each other or the model.
    #[error("{0}")]
    Invalid(String),
}

impl LgcnError {
    /// Whether the caller's input is at fault (exit 2) rather than the system.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, LgcnError::Io { source, .. } if source.kind() != std::io::ErrorKind::NotFound)
    }
}

/// Everything besides the weights that clustering with a model needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LgcnSettings {
    /// The network's widths.
    pub network: LgcnConfig,
    /// Subgraph sizes the network was trained with.
    pub ips: IpsConfig,
    /// How links become clusters (the threshold chosen after training).
    pub merge: MergeConfig,
    /// What the model was trained on, in words.
    pub trained_on: String,
}

/// A network with its settings.
#[derive(Debug)]
pub struct LgcnModel<B: Backend> {
    /// The network.
    pub network: LinkageGcn<B>,
    /// Its settings.
    pub settings: LgcnSettings,
}

fn key(path: &str) -> Option<String> {
    Some(path.to_string())
}

impl<B: Backend> LgcnModel<B> {
    /// Reads a model file.
    pub fn read(path: &Path, device: &B::Device) -> Result<Self, LgcnError> {
        let bytes = std::fs::read(path).map_err(|source| LgcnError::Io { path: path.to_path_buf(), source })?;
        Self::from_bytes(&bytes, path, device)
    }

    /// The bundled default model.
    pub fn bundled(device: &B::Device) -> Result<Self, LgcnError> {
        Self::from_bytes(DEFAULT_MODEL_BYTES, Path::new("<bundled L-GCN model>"), device)
    }

    /// Parses model bytes; `path` names them in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path, device: &B::Device) -> Result<Self, LgcnError> {
        let format = |problem: String| LgcnError::Format { path: path.to_path_buf(), problem };
        let header = StateDict::safetensors_metadata_of(bytes, path).map_err(|e| format(e.to_string()))?;
        let json = header
            .get(SETTINGS_KEY)
            .ok_or_else(|| format(format!("no `{SETTINGS_KEY}` entry in the header: not an L-GCN model written by `visage cluster train-lgcn`")))?;
        let settings: LgcnSettings = serde_json::from_str(json).map_err(|e| format(format!("`{SETTINGS_KEY}` is not L-GCN settings: {e}")))?;
        let network = &settings.network;
        if network.input_dim == 0
            || network.hidden.is_empty()
            || network.hidden.len() > 16
            || network.hidden.iter().chain([&network.input_dim, &network.classifier_dim]).any(|&w| w == 0 || w > 65_536)
        {
            return Err(format(format!("`{SETTINGS_KEY}`: widths must be 1 ..= 65536 with 1 ..= 16 graph layers")));
        }
        if settings.ips.k1 == 0 || settings.ips.k1 > 10_000 || settings.ips.k2 > 10_000 || settings.ips.u > 10_000 {
            return Err(format(format!("`{SETTINGS_KEY}`: k1 must be 1 ..= 10000, k2 and u at most 10000")));
        }
        if !(settings.merge.threshold.is_finite() && (0.0..=1.0).contains(&settings.merge.threshold) && (0.0..1.0).contains(&settings.merge.step)) {
            return Err(format(format!("`{SETTINGS_KEY}`: the merge threshold must be in [0, 1] and the step in [0, 1)")));
        }
        let state = StateDict::from_safetensors_bytes(bytes, path).map_err(|e| format(e.to_string()))?;
        let network = settings.network.init::<B>(device);
        state.check_keys(&expected_keys(&network, key)).map_err(|e| format(e.to_string()))?;
        let network = load_state_dict(network, &state, key).map_err(|e| format(e.to_string()))?;
        Ok(LgcnModel { network, settings })
    }

    /// The model file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, LgcnError> {
        let json = serde_json::to_string(&self.settings).map_err(|e| LgcnError::Invalid(e.to_string()))?;
        state_dict_of(&self.network, key)
            .to_safetensors_bytes([(SETTINGS_KEY.to_string(), json)].into())
            .map_err(|e| LgcnError::Invalid(e.to_string()))
    }

    /// Writes the model file (atomically).
    pub fn write(&self, path: &Path) -> Result<(), LgcnError> {
        let bytes = self.to_bytes()?;
        visage_image::write_atomically(path, &bytes).map_err(|source| LgcnError::Io { path: path.to_path_buf(), source })
    }

    /// Parameters of the network.
    pub fn parameters(&self) -> usize {
        self.network.num_params()
    }
}
