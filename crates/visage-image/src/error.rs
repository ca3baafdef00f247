//! The errors of decoding and aligning: each names the file (or says which
//! landmarks) and what was expected, so the message alone is enough.

use std::path::PathBuf;

/// Everything that can go wrong between a file's bytes and an aligned crop.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
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

    #[error("alignment: {0}")]
    Alignment(String),
}

impl ImageError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}

pub type Result<T> = std::result::Result<T, ImageError>;
