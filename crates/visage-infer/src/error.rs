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
    ImageTooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        pixels: u64,
        max_pixels: u64,
    },

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
