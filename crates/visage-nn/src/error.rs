//! [`NnError`]: why a backbone could not be built or its weights not loaded.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong building a backbone or loading its weights.
/// Each variant names the field, tensor key or file at fault.
#[derive(Debug, Error)]
pub enum NnError {
    /// A configuration value is out of its valid range.
    #[error("backbone config: `{field}` {problem}")]
    InvalidConfig {
        /// The config field (or argument: `family`, `state dict`) at fault.
        field: &'static str,
        /// What is wrong with it, with the value given.
        problem: String,
    },

    /// An architecture name that none of the known backbones answers to.
    #[error("unknown backbone architecture '{name}' (known: {known})")]
    UnknownArch {
        /// The name as given.
        name: String,
        /// Every known name with its short alias, comma-separated: `iresnet18 (r18), …`.
        known: String,
    },

    /// The weights file could not be read.
    #[error("cannot read weights file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The weights file is not in the expected format.
    #[error("weights file {path}: {problem}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What in it is malformed.
        problem: String,
    },

    /// A tensor the model needs is absent from the state dict.
    #[error("state dict has no tensor '{key}' (needed for the model's `{model_path}`)")]
    MissingTensor {
        /// The state-dict key looked for (the reference's PyTorch name).
        key: String,
        /// The burn module path of the parameter it would fill.
        model_path: String,
    },

    /// A tensor is present but its shape differs from the model's.
    #[error("state dict tensor '{key}' has shape {found:?}, the model's `{model_path}` needs {expected:?}")]
    ShapeMismatch {
        /// The state-dict key.
        key: String,
        /// The burn module path of the parameter it would fill.
        model_path: String,
        /// The shape the model needs, in PyTorch's orientation (a linear
        /// weight as `[out, in]`).
        expected: Vec<usize>,
        /// The shape the state dict holds.
        found: Vec<usize>,
    },

    /// Tensors that no model parameter maps to: a different architecture or
    /// configuration (e.g. embedding size, layout) than the checkpoint's.
    #[error("state dict has {count} tensor(s) the model does not use, e.g. {examples:?}: is the architecture or layout right?")]
    UnusedTensors {
        /// How many float tensors went unused.
        count: usize,
        /// The first few of their keys (at most 5, in key order).
        examples: Vec<String>,
    },

    /// A tensor's values are not finite (NaN or infinity).
    #[error("state dict tensor '{key}' holds a non-finite value")]
    NonFinite {
        /// The state-dict key of the tensor.
        key: String,
    },

    /// The key sets of a state dict and a model differ: counts and the first few of each.
    #[error("state dict does not fit the model: {missing} key(s) missing {missing_examples:?}, {unexpected} unexpected {unexpected_examples:?}; is the architecture, layout or checkpoint family right?")]
    KeyMismatch {
        /// How many keys the model needs that the state dict lacks.
        missing: usize,
        /// The first few of them (at most 5, in key order).
        missing_examples: Vec<String>,
        /// How many keys the state dict has that the model does not use.
        unexpected: usize,
        /// The first few of them (at most 5, in key order).
        unexpected_examples: Vec<String>,
    },

    /// A checkpoint file whose weights do not fit the configured model.
    #[error("{family} checkpoint {path}: {source}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What it was read as: a [`crate::CheckpointFamily`] name
        /// (`insightface`, `magface`, `adaface`), `ONNX` or `safetensors`.
        family: String,
        /// Why the weights do not fit (a key, shape or value error).
        source: Box<NnError>,
    },
}

impl NnError {
    /// Whether the caller's input is at fault (exit code 2 at the CLI): a
    /// configuration value, or a weights file whose content is malformed or
    /// does not fit the model. Only a file that cannot be read (I/O) is the
    /// environment's fault.
    pub fn is_bad_input(&self) -> bool {
        match self {
            NnError::Io { .. } => false,
            NnError::Checkpoint { source, .. } => source.is_bad_input(),
            _ => true,
        }
    }
}
