//! Errors of a training run; each names the file or config field involved.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid training config: {message}")]
    Config { path: PathBuf, message: String },
    #[error("training data: {0}")]
    Data(#[from] visage_data::DataError),
    #[error("backbone: {0}")]
    Backbone(#[from] visage_nn::NnError),
    #[error("margin head: {0}")]
    Head(#[from] visage_heads::HeadError),
    #[error("{path}: checkpoint: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("step {step}: training diverged ({what}); stopped. The last good checkpoint is kept{}: lower the learning rate and resume", last_checkpoint.as_ref().map(|p| format!(" at {}", p.display())).unwrap_or_default())]
    Diverged { step: u64, what: String, last_checkpoint: Option<PathBuf> },
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

impl TrainError {
    /// Whether the input is at fault (exit code 2 at the command line): the
    /// config, the data, the backbone's weights, the head's parameters, a
    /// checkpoint that does not fit, and read errors a user fixes by naming
    /// another file. Write failures and divergence are not.
    pub fn is_bad_input(&self) -> bool {
        use std::io::ErrorKind::*;
        match self {
            TrainError::Read { source, .. } => {
                matches!(source.kind(), NotFound | PermissionDenied | IsADirectory | InvalidData | InvalidInput | UnexpectedEof)
            }
            TrainError::Write { .. } | TrainError::Diverged { .. } => false,
            TrainError::Data(e) => e.is_bad_input(),
            TrainError::Backbone(e) => e.is_bad_input(),
            TrainError::Config { .. } | TrainError::Head(_) | TrainError::Checkpoint { .. } => true,
        }
    }
}
