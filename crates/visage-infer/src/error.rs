//! The one error type of visage-infer: every variant names the input it is
//! about (a file, a model, a config field) and what was expected of it, so a
//! message is enough to fix the problem without reading the code.

use std::path::PathBuf;

/// Everything that can go wrong between a file on disk and an embedding.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// A file (model, config, wheel, cache entry) cannot be read or written.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A photo cannot be read or decoded: not an image, more pixels than
    /// [`crate::DecodeOptions::max_pixels`] (refused before decoding), corrupt
    /// or truncated data, or a file that cannot be read. visage-image's error,
    /// whose message names the photo.
    #[error(transparent)]
    Image(visage_image::ImageError),

    /// The detector found no face in the photo.
    #[error("{path}: no face found")]
    NoFace {
        /// The photo.
        path: PathBuf,
    },

    /// Without a detector, an input whose size is not the recogniser's input size.
    #[error("{path}: {width}×{height} is not an aligned crop (expected {expected}×{expected}: without a detector, inputs must already be aligned)")]
    NotAligned {
        /// The photo.
        path: PathBuf,
        /// Its width in pixels.
        width: u32,
        /// Its height in pixels.
        height: u32,
        /// The side the message asks for (the pipeline passes 112, the aligned crop side).
        expected: u32,
    },

    /// The landmarks give no usable similarity transform (degenerate or
    /// non-finite points); the message says which.
    #[error("alignment: {0}")]
    Alignment(String),

    /// The ONNX Runtime library cannot be found, fetched, verified or
    /// initialised; the message says what to set (`ORT_DYLIB_PATH`, a cache directory).
    #[error("ONNX Runtime library: {0}")]
    Runtime(String),

    /// A model cannot be used: missing file, sha256 mismatch, unexpected
    /// inputs or outputs, or a failed run.
    #[error("{path}: {message}")]
    Model {
        /// The ONNX file.
        path: PathBuf,
        /// What is wrong; on a pipeline run, which photo it was on.
        message: String,
    },

    /// The model file a config names is in none of the folders searched (see
    /// [`crate::ModelRegistry::locate`]); the message says where to put it.
    #[error("{file}: {message}")]
    ModelNotFound {
        /// The file the config names.
        file: PathBuf,
        /// Which model, the folders searched, and where it comes from.
        message: String,
    },

    /// A recogniser config ([`crate::RecognizerConfig`]) is not valid TOML
    /// of the expected fields, or its values are inconsistent.
    #[error("{path}: invalid recogniser config: {message}")]
    Config {
        /// The TOML file.
        path: PathBuf,
        /// The parser's or the check's message.
        message: String,
    },

    /// A detector config ([`crate::DetectorConfig`]) is not valid TOML of
    /// the expected fields, or a value is out of range.
    #[error("{path}: invalid detector config: {message}")]
    DetectorConfig {
        /// The TOML file.
        path: PathBuf,
        /// The parser's or the check's message.
        message: String,
    },
}

impl InferError {
    /// Whether the input is at fault (exit code 2 at the command line)
    /// rather than the machine or the runtime: an unreadable, undecodable,
    /// oversized or faceless photo, a bad config, and read errors a user fixes
    /// by naming another file. The ONNX Runtime library and model runs are not.
    pub fn is_bad_input(&self) -> bool {
        use std::io::ErrorKind::*;
        match self {
            InferError::Io { source, .. } => {
                matches!(source.kind(), NotFound | PermissionDenied | IsADirectory | InvalidData | InvalidInput | UnexpectedEof)
            }
            InferError::Runtime(_) | InferError::Model { .. } => false,
            InferError::Image(e) => e.is_bad_input(),
            _ => true,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Model { path: path.into(), message: message.into() }
    }
}

/// `Result` with [`InferError`] as the default error.
pub type Result<T, E = InferError> = std::result::Result<T, E>;

/// Decoding and alignment errors from visage-image keep their variants here.
impl From<visage_image::ImageError> for InferError {
    fn from(error: visage_image::ImageError) -> Self {
        match error {
            // The pipeline adds the photo's path to alignment errors.
            visage_image::ImageError::Alignment(message) => Self::Alignment(message),
            other => Self::Image(other),
        }
    }
}
