//! Every way a gallery operation fails, each naming the file, identity or
//! field it is about and what was expected.

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum GalleryError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// A file of the gallery is unreadable as what it should be (bad JSON,
    /// a checksum that does not match, a record in the middle of the log
    /// that is damaged). Never silently repaired: acknowledged data may be in it.
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },

    #[error("{path}: not a visage gallery ({message})")]
    NotAGallery { path: PathBuf, message: String },

    #[error("no identity named `{name}` in the gallery")]
    UnknownIdentity { name: String },

    #[error("identity `{name}` already exists in the gallery")]
    IdentityExists { name: String },

    #[error("identity name {name:?} is not allowed: {reason}")]
    BadName { name: String, reason: String },

    /// An embedding of the wrong length: the gallery was built with another recogniser.
    #[error("{what} has {found} dimensions, the gallery holds {expected}-dimensional templates")]
    DimensionMismatch { what: String, expected: usize, found: usize },

    #[error("{what}: {message}")]
    Invalid { what: String, message: String },

    /// Threshold calibration failed (bad score file, FAR target out of reach).
    #[error("calibration: {0}")]
    Calibration(String),

    #[error("{location}: {message}")]
    Unsupported { location: String, message: String },

    /// Another process holds the gallery's lock (`visage serve` holds it as
    /// long as it runs) and did not let go within the wait allowed.
    #[error(
        "{}: the gallery is locked by another process{}; gave up after {waited_s:.0} s (is `visage serve` running on it? then use its HTTP API, or stop it)",
        path.display(),
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, holder: Option<u32>, waited_s: f64 },

    /// The database server failed or could not be reached (the location is
    /// a connection URL without its password).
    #[error("{location}: {message}")]
    Database { location: String, message: String },

    /// The gallery holds another recogniser's templates (cosines between two
    /// models' embeddings mean nothing).
    #[error("{location}: the gallery holds templates of recogniser `{holds}`, not `{asked}` (pass --recognizer {holds})")]
    WrongRecognizer {
        /// Where the gallery is (a directory, or a URL without its password).
        location: String,
        /// The recogniser whose templates the gallery holds.
        holds: String,
        /// The recogniser it was opened for.
        asked: String,
    },
}

pub type Result<T, E = GalleryError> = std::result::Result<T, E>;

impl GalleryError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        GalleryError::Io { path: path.to_path_buf(), source }
    }

    pub fn corrupt(path: &Path, message: impl Into<String>) -> Self {
        GalleryError::Corrupt { path: path.to_path_buf(), message: message.into() }
    }

    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        GalleryError::Invalid { what: what.into(), message: message.into() }
    }

    /// Whether the caller's input was at fault (exit code 2 at the CLI)
    /// rather than the machine (I/O) or the gallery's files.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            GalleryError::NotAGallery { .. }
                | GalleryError::UnknownIdentity { .. }
                | GalleryError::IdentityExists { .. }
                | GalleryError::BadName { .. }
                | GalleryError::DimensionMismatch { .. }
                | GalleryError::Invalid { .. }
                | GalleryError::Calibration(_)
                | GalleryError::Unsupported { .. }
                | GalleryError::WrongRecognizer { .. }
        )
    }
}
