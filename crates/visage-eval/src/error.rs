//! Errors of the evaluation toolkit.
//!
//! Every variant that comes from a file names the file and, where there is one,
//! the 1-based line, and says what was expected, so a user can fix the input
//! without reading the source.

use std::path::PathBuf;

/// What went wrong while reading or evaluating user input.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The file could not be opened or read — or, for [`write_labels`] and
    /// [`write_html`], written (the message still says "cannot read").
    ///
    /// [`write_labels`]: crate::io::labels::write_labels
    /// [`write_html`]: crate::report::write_html
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file (or folder) at fault.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A line (or record) of the file is not what the format says.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file at fault.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The file is well-formed but its content cannot be evaluated
    /// (empty, one class only, lengths that do not match, ...).
    #[error("{path}: {message}")]
    Content {
        /// The file (or folder) at fault.
        path: PathBuf,
        /// What is wrong and what was expected.
        message: String,
    },
    /// Arguments or in-memory inputs that cannot be evaluated.
    #[error("{0}")]
    Invalid(String),
}

impl EvalError {
    /// Whether the input is at fault (exit 2) rather than the machine (exit
    /// 1): every parse and content error, and the read errors a user fixes by
    /// naming another file (missing, unreadable, a directory, cut short).
    pub fn is_bad_input(&self) -> bool {
        use std::io::ErrorKind::*;
        match self {
            EvalError::Io { source, .. } => {
                matches!(source.kind(), NotFound | PermissionDenied | IsADirectory | InvalidData | InvalidInput | UnexpectedEof)
            }
            EvalError::Parse { .. } | EvalError::Content { .. } | EvalError::Invalid(_) => true,
        }
    }

    /// [`EvalError::Io`]: `path` could not be read.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io { path: path.into(), source }
    }
    /// [`EvalError::Parse`]: line `line` (1-based) of `path` is wrong.
    pub fn parse(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        EvalError::Parse { path: path.into(), line, message: message.into() }
    }
    /// [`EvalError::Content`]: `path` reads but cannot be evaluated, also
    /// against another input (a caller checking that two files agree uses it
    /// to name the file at fault in the same format).
    pub fn content(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        EvalError::Content { path: path.into(), message: message.into() }
    }
}

/// Result of this crate's fallible functions, [`EvalError`] by default.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;
