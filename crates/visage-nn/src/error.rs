use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong building a backbone or loading its weights.
/// Each variant names the field, tensor key or file at fault.
#[derive(Debug, Error)]
pub enum NnError {
    /// A configuration value is out of its valid range.
    #[error("backbone config: `{field}` {problem}")]
    InvalidConfig { field: &'static str, problem: String },

    /// An architecture name that none of the known backbones answers to.
    #[error("unknown backbone architecture '{name}' (known: {known})")]
    UnknownArch { name: String, known: String },

    /// The weights file could not be read.
    #[error("cannot read weights file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// The weights file is not in the expected format.
    #[error("weights file {path}: {problem}")]
    Format { path: PathBuf, problem: String },

    /// A tensor the model needs is absent from the state dict.
    #[error("state dict has no tensor '{key}' (needed for the model's `{model_path}`)")]
    MissingTensor { key: String, model_path: String },

    /// A tensor is present but its shape differs from the model's.
    #[error("state dict tensor '{key}' has shape {found:?}, the model's `{model_path}` needs {expected:?}")]
    ShapeMismatch { key: String, model_path: String, expected: Vec<usize>, found: Vec<usize> },

    /// Tensors that no model parameter maps to: a different architecture or
    /// configuration (e.g. embedding size, layout) than the checkpoint's.
    #[error("state dict has {count} tensor(s) the model does not use, e.g. {examples:?}: is the architecture or layout right?")]
    UnusedTensors { count: usize, examples: Vec<String> },

    /// A tensor's values are not finite (NaN or infinity).
    #[error("state dict tensor '{key}' holds a non-finite value")]
    NonFinite { key: String },

    /// The key sets of a state dict and a model differ: counts and the first few of each.
    #[error("state dict does not fit the model: {missing} key(s) missing {missing_examples:?}, {unexpected} unexpected {unexpected_examples:?}; is the architecture, layout or checkpoint family right?")]
    KeyMismatch { missing: usize, missing_examples: Vec<String>, unexpected: usize, unexpected_examples: Vec<String> },

    /// A checkpoint file whose weights do not fit the configured model.
    #[error("{family} checkpoint {path}: {source}")]
    Checkpoint { path: PathBuf, family: String, source: Box<NnError> },
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
