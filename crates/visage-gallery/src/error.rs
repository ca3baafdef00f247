//! Every way a gallery operation fails, each naming the file, identity or
//! field it is about and what was expected.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// A gallery operation's failure. [`GalleryError::is_bad_input`] tells the
/// caller's mistakes (exit code 2 at the CLI) from failures of the machine,
/// the database server or the gallery's files (exit code 1).
#[derive(Debug, Error)]
pub enum GalleryError {
    /// A file-system call on one of the gallery's files failed (permissions,
    /// a full disk, an fsync error). Not the caller's fault; a write that
    /// returns it changed nothing.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// A file of the gallery is unreadable as what it should be (bad JSON,
    /// a checksum that does not match, a record in the middle of the log
    /// that is damaged). Never silently repaired: acknowledged data may be in
    /// it. Not bad input: the gallery, not the request, is at fault.
    #[error("{path}: {message}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What does not hold, with the line or byte where it was found.
        message: String,
    },

    /// The directory has no `gallery.json`: not a gallery, or not created
    /// yet (bad input: the caller named the wrong place).
    #[error("{path}: not a visage gallery ({message})")]
    NotAGallery {
        /// The directory given.
        path: PathBuf,
        /// What is missing.
        message: String,
    },

    /// No identity has this name (bad input).
    #[error("no identity named `{name}` in the gallery")]
    UnknownIdentity {
        /// The name asked for.
        name: String,
    },

    /// An import with [`ImportConflict::Fail`](crate::ImportConflict::Fail)
    /// met a name the gallery holds already; nothing was written (bad input).
    #[error("identity `{name}` already exists in the gallery")]
    IdentityExists {
        /// The name both galleries hold.
        name: String,
    },

    /// A name [`check_name`](crate::model::check_name) refuses: empty, over
    /// 256 bytes, surrounding spaces or control characters (bad input).
    #[error("identity name {name:?} is not allowed: {reason}")]
    BadName {
        /// The name given.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },

    /// An embedding of the wrong length: the gallery was built with another
    /// recogniser (bad input).
    #[error("{what} has {found} dimensions, the gallery holds {expected}-dimensional templates")]
    DimensionMismatch {
        /// The vector (a query, a face's embedding, an imported template).
        what: String,
        /// The gallery's embedding size.
        expected: usize,
        /// The vector's length.
        found: usize,
    },

    /// A request the gallery refuses as given (bad input), for example a
    /// threshold outside −1 to 1, metadata too deep or too large, an export
    /// that is malformed or of another recogniser, a malformed connection
    /// URL, an idempotency key reused for another request, creating a
    /// gallery where one exists, or a transaction too large for one log
    /// record.
    #[error("{what}: {message}")]
    Invalid {
        /// The argument, field or location at fault.
        what: String,
        /// What is wrong with it and what is allowed.
        message: String,
    },

    /// Threshold calibration failed (bad score file, FAR target out of
    /// reach, only one class of pairs); bad input.
    #[error("calibration: {0}")]
    Calibration(String),

    /// The gallery cannot do this as opened or built (bad input): a write
    /// to a read-only open, an idempotency key to a backend that does not
    /// record them, a schema or format newer than this build reads, a
    /// PostgreSQL location without the `postgres` feature.
    #[error("{location}: {message}")]
    Unsupported {
        /// Where the gallery is (a directory, or a URL without its password).
        location: String,
        /// What is not possible, and what to do instead.
        message: String,
    },

    /// Another process holds the gallery's lock (`visage serve` holds it as
    /// long as it runs) and did not let go within the wait allowed. Not bad
    /// input: the same call succeeds once the lock is free.
    #[error(
        "{}: the gallery is locked by another process{}; gave up after {waited_s:.0} s (is `visage serve` running on it? then use its HTTP API, or stop it)",
        path.display(),
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    Locked {
        /// The gallery directory.
        path: PathBuf,
        /// The pid in the lock file, when it could be read: the last writer's,
        /// which is stale when readers (shared holders) are what blocked.
        holder: Option<u32>,
        /// How long this process waited (its lock timeout), in seconds.
        waited_s: f64,
    },

    /// The database server failed or could not be reached: refused login,
    /// missing database or pgvector, a statement past its timeout. Counted
    /// as the environment's failure, not bad input.
    #[error("{location}: {message}")]
    Database {
        /// The connection URL with its password replaced by `***`.
        location: String,
        /// The server's or driver's error, in words that say what to fix where clear.
        message: String,
    },

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

/// The crate's result, [`GalleryError`] by default.
pub type Result<T, E = GalleryError> = std::result::Result<T, E>;

impl GalleryError {
    /// [`GalleryError::Io`] about `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        GalleryError::Io { path: path.to_path_buf(), source }
    }

    /// [`GalleryError::Corrupt`] about `path`.
    pub fn corrupt(path: &Path, message: impl Into<String>) -> Self {
        GalleryError::Corrupt { path: path.to_path_buf(), message: message.into() }
    }

    /// [`GalleryError::Invalid`]: `what` is at fault, `message` says how.
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
