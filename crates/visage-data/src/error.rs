//! The one error type of visage-data: every variant names the file (and where
//! it applies the record key and byte offset) and what was expected, so a
//! message alone is enough to find the bad input.

use std::path::PathBuf;

/// Everything that can go wrong reading, packing or loading training data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file-system call failed (open, read, write, rename, list).
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file or folder the call was on.
        path: PathBuf,
        /// What was being done, e.g. "cannot read the index".
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The `.rec` (or its `.idx`) cannot be used at all: truncated, not
    /// RecordIO, index pointing outside the file. Raised when opening.
    #[error("{path}: {message}")]
    Corrupt {
        /// The `.rec` or `.idx` at fault.
        path: PathBuf,
        /// What is wrong, with the byte offsets involved.
        message: String,
    },

    /// `.idx` line that is not `key<TAB>offset`.
    #[error("{path}:{line}: {message}")]
    Index {
        /// The `.idx` file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },

    /// One record cannot be read or parsed; loaders skip it and count it.
    #[error("{path}: record key {key} at byte {offset}: {message}")]
    BadRecord {
        /// The `.rec` file.
        path: PathBuf,
        /// The record's key (its `.idx` key, or its position in a scanned file).
        key: u64,
        /// Byte offset of the record's first part (0 when the key is not in the index).
        offset: u64,
        /// What is wrong with the record.
        message: String,
    },

    /// One image (a file in a folder or a record's payload) cannot be decoded.
    #[error(transparent)]
    Image(#[from] visage_image::ImageError),

    /// An image folder cannot be used (no identity sub-folders, no images,
    /// more than 2^24 identities, nothing packable), or one of its files
    /// cannot be JPEG-encoded while packing.
    #[error("{path}: {message}")]
    Folder {
        /// The folder's root, or the file at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A setting or request of the caller cannot be met: invalid loader or
    /// augmentation settings, a batch past the epoch's end, a JPEG quality
    /// outside 1..=100, a label outside the identities being packed, more
    /// than 2^24 images to pack, a thread that cannot start. The message
    /// names the setting.
    #[error("{0}")]
    Config(String),
}

impl DataError {
    /// Whether the input is at fault (exit code 2 at the command line):
    /// a corrupt or malformed dataset, an undecodable image, a bad setting,
    /// and failures to read, open or list what the caller named. Failures to
    /// create, write, sync or rename an output are the machine's.
    pub fn is_bad_input(&self) -> bool {
        match self {
            DataError::Io { action, .. } => ["cannot read", "cannot open", "cannot list"].iter().any(|a| action.starts_with(a)),
            DataError::Image(e) => e.is_bad_input(),
            _ => true,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), action, source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Corrupt { path: path.into(), message: message.into() }
    }
}

/// `Result` with [`DataError`] as the default error.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
