//! The one error type of visage-data: every variant names the file (and where
//! it applies the record key and byte offset) and what was expected, so a
//! message alone is enough to find the bad input.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The `.rec` (or its `.idx`) cannot be used at all: truncated, not
    /// RecordIO, index pointing outside the file. Raised when opening.
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },

    /// `.idx` line that is not `key<TAB>offset`.
    #[error("{path}:{line}: {message}")]
    Index { path: PathBuf, line: usize, message: String },

    /// One record cannot be read or parsed; loaders skip it and count it.
    #[error("{path}: record key {key} at byte {offset}: {message}")]
    BadRecord { path: PathBuf, key: u64, offset: u64, message: String },

    /// One image (a file in a folder or a record's payload) cannot be decoded.
    #[error(transparent)]
    Image(#[from] visage_image::ImageError),

    #[error("{path}: {message}")]
    Folder { path: PathBuf, message: String },

    #[error("{0}")]
    Config(String),
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), action, source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Corrupt { path: path.into(), message: message.into() }
    }
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
