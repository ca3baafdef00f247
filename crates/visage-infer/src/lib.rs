//! visage-infer: from a photo on disk to face embeddings.
//!
//! The pipeline, one file per step:
//! - [`decode`]: any JPEG/PNG/WebP/BMP to upright 8-bit RGB, refusing
//!   decompression bombs before decoding;
//! - [`similarity`] + [`warp`] = [`align`]: the 5-landmark Umeyama similarity
//!   onto insightface's template and the `cv2.warpAffine`-equivalent warp into
//!   a 112×112 crop.

pub mod align;
pub mod decode;
pub mod error;
pub mod similarity;
pub mod warp;

pub use align::{align_face, alignment_transform, Landmarks, ALIGNED_SIZE, ARCFACE_TEMPLATE_112};
pub use decode::{decode_rgb, load_rgb, DecodeOptions};
pub use error::{InferError, Result};
pub use similarity::Similarity;
pub use warp::warp_affine_bilinear;
