//! Errors of a training run; each names the file or config field involved.

use std::path::PathBuf;

/// Why a run, a checkpoint load, cleaning or a curves report failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file (config, checkpoint state, log, dataset to clean) could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file or folder of the run's output (checkpoint, log, report,
    /// cleaned dataset) could not be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config, or an input the config names, does not make a valid run:
    /// a field out of range, data that do not fit the checkpoint, a
    /// malformed `metrics.csv`/`dropped.csv`/`.bin` set.
    #[error("{path}: invalid training config: {message}")]
    Config {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong, naming the field or line.
        message: String,
    },
    /// The training data could not be opened or loaded.
    #[error("training data: {0}")]
    Data(#[from] visage_data::DataError),
    /// The backbone could not be built, or `init_from`'s weights do not fit it.
    #[error("backbone: {0}")]
    Backbone(#[from] visage_nn::NnError),
    /// The head's parameters are invalid, or the head refused a batch.
    #[error("margin head: {0}")]
    Head(#[from] visage_heads::HeadError),
    /// A checkpoint is missing, unreadable, made with another config (on
    /// resume) or unfit for the job (cleaning needs K > 1 sub-centres).
    #[error("{path}: checkpoint: {message}")]
    Checkpoint {
        /// The checkpoint folder or file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The loss or the features became NaN or infinite; nothing after the
    /// last checkpoint was saved.
    #[error("step {step}: training diverged ({what}); stopped. The last good checkpoint is kept{}: lower the learning rate and resume", last_checkpoint.as_ref().map(|p| format!(" at {}", p.display())).unwrap_or_default())]
    Diverged {
        /// The step (0-based) that produced it.
        step: u64,
        /// What was not finite.
        what: String,
        /// The newest checkpoint a resume would start from, if any.
        last_checkpoint: Option<PathBuf>,
    },
    /// A run over several nodes could not go on: a node did not join, died,
    /// hangs, or the network failed ([`crate::distributed`]).
    #[error("{node}: {message}")]
    Collective {
        /// This node, as `node R of N`.
        node: String,
        /// What failed and what to check.
        message: String,
    },
}

/// `Result` with [`TrainError`] as the default error.
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
            TrainError::Write { .. } | TrainError::Diverged { .. } | TrainError::Collective { .. } => false,
            TrainError::Data(e) => e.is_bad_input(),
            TrainError::Backbone(e) => e.is_bad_input(),
            TrainError::Config { .. } | TrainError::Head(_) | TrainError::Checkpoint { .. } => true,
        }
    }
}
