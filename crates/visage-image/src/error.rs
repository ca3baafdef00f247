//! The errors of decoding and aligning: each names the file (or says which
//! landmarks) and what was expected, so the message alone is enough.

use std::path::PathBuf;

/// Everything that can go wrong between a file's bytes and an aligned crop.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The bytes are none of the four accepted formats (sniffed from the content, not the name).
    #[error("{path}: not an image (expected JPEG, PNG, WebP or BMP)")]
    NotAnImage {
        /// The file (or the name given with the bytes).
        path: PathBuf,
    },

    /// The header declares more pixels than [`DecodeOptions::max_pixels`](crate::DecodeOptions::max_pixels);
    /// no pixel buffer was allocated.
    #[error("{path}: {width}×{height} = {pixels} pixels is above the limit of {max_pixels} (refused before decoding; raise DecodeOptions::max_pixels to accept it)")]
    ImageTooLarge {
        /// The file.
        path: PathBuf,
        /// Declared width, pixels (before EXIF rotation).
        width: u32,
        /// Declared height, pixels (before EXIF rotation).
        height: u32,
        /// `width × height`.
        pixels: u64,
        /// The limit it exceeds.
        max_pixels: u64,
    },

    /// The decoder refused the data (corrupt or truncated file, or a decoder panic, caught).
    #[error("{path}: cannot decode the image (truncated or corrupt?): {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },

    /// A JPEG whose last scan has no end-of-image marker after it: the decoder would
    /// have filled the missing part with grey, so it is refused instead.
    #[error("{path}: truncated JPEG (no end-of-image marker after the last scan): the file is incomplete")]
    Truncated {
        /// The file.
        path: PathBuf,
    },

    /// The landmarks define no similarity (fewer than 2 points, unequal counts, or
    /// all source points at one place); holds the reason.
    #[error("alignment: {0}")]
    Alignment(String),
}

impl ImageError {
    /// Whether the input is at fault (exit code 2 at the command line)
    /// rather than the machine: every decoding and alignment error, and the
    /// read errors a user fixes by naming another file (missing, unreadable,
    /// a directory, cut short).
    pub fn is_bad_input(&self) -> bool {
        use std::io::ErrorKind::*;
        match self {
            ImageError::Io { source, .. } => {
                matches!(source.kind(), NotFound | PermissionDenied | IsADirectory | InvalidData | InvalidInput | UnexpectedEof)
            }
            _ => true,
        }
    }

    /// [`ImageError::Io`] for `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}

/// `Result` with [`ImageError`].
pub type Result<T> = std::result::Result<T, ImageError>;
