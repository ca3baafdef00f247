//! The one error type of visage-infer: every variant names the input it is
//! about (a file, a model, a config field) and what was expected of it, so a
//! message is enough to fix the problem without reading the code.

use std::path::PathBuf;

/// Everything that can go wrong between a file on disk and an embedding.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: not an image (expected JPEG, PNG, WebP or BMP)")]
    NotAnImage { path: PathBuf },

    #[error("{path}: {width}×{height} = {pixels} pixels is above the limit of {max_pixels} (refused before decoding; raise DecodeOptions::max_pixels to accept it)")]
    ImageTooLarge { path: PathBuf, width: u32, height: u32, pixels: u64, max_pixels: u64 },

    #[error("{path}: cannot decode the image (truncated or corrupt?): {source}")]
    Decode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },

    #[error("{path}: truncated JPEG (no end-of-image marker after the last scan): the file is incomplete")]
    Truncated { path: PathBuf },

    #[error("{path}: no face found")]
    NoFace { path: PathBuf },

    #[error("{path}: {width}×{height} is not an aligned crop (expected {expected}×{expected}: without a detector, inputs must already be aligned)")]
    NotAligned { path: PathBuf, width: u32, height: u32, expected: u32 },

    #[error("alignment: {0}")]
    Alignment(String),

    #[error("ONNX Runtime library: {0}")]
    Runtime(String),

    #[error("{path}: {message}")]
    Model { path: PathBuf, message: String },

    #[error("{path}: invalid recogniser config: {message}")]
    Config { path: PathBuf, message: String },

    #[error("{path}: invalid detector config: {message}")]
    DetectorConfig { path: PathBuf, message: String },
}

impl InferError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Model { path: path.into(), message: message.into() }
    }
}

pub type Result<T, E = InferError> = std::result::Result<T, E>;

/// Decoding and alignment errors from visage-image keep their variants here.
impl From<visage_image::ImageError> for InferError {
    fn from(error: visage_image::ImageError) -> Self {
        use visage_image::ImageError as E;
        match error {
            E::Io { path, source } => Self::Io { path, source },
            E::NotAnImage { path } => Self::NotAnImage { path },
            E::ImageTooLarge { path, width, height, pixels, max_pixels } => Self::ImageTooLarge { path, width, height, pixels, max_pixels },
            E::Decode { path, source } => Self::Decode { path, source },
            E::Truncated { path } => Self::Truncated { path },
            E::Alignment(message) => Self::Alignment(message),
        }
    }
}
