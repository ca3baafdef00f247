//! visage-image: what training and inference both need from a photo, with
//! no model runtime: decoding (`decode`: JPEG/PNG/WebP/BMP → upright 8-bit
//! RGB, EXIF orientation, a pixel limit checked before decoding), a model's
//! input normalisation (`preprocess`), the 5-point alignment geometry
//! (`similarity`: Umeyama; `warp`: OpenCV's bilinear sampling; `align`: the
//! ArcFace template and the 112×112 crop) and a face's embedding
//! (`embedding`: unit vector and magnitude), and writing a file so no
//! reader sees it half-written (`atomic`). visage-infer adds ONNX Runtime
//! on top; visage-data, visage-train and visage-synth use this crate alone.

#![warn(missing_docs)]

pub mod align;
pub mod atomic;
pub mod decode;
pub mod embedding;
pub mod error;
pub mod preprocess;
pub mod similarity;
pub mod warp;

pub use align::{align_face, alignment_transform, Landmarks, ALIGNED_SIZE, ARCFACE_TEMPLATE_112};
pub use atomic::{write_atomically, write_atomically_with, write_png, AtomicOptions};
pub use decode::{decode_rgb, load_rgb, DecodeOptions};
pub use embedding::FaceEmbedding;
pub use error::{ImageError, Result};
/// The decoded photo type `load_rgb` returns.
pub use image::RgbImage;
pub use preprocess::{ChannelOrder, ModelFamily, Normalization};
pub use similarity::Similarity;
pub use warp::warp_affine_bilinear;
