//! visage-infer: from a photo on disk to face embeddings.
//!
//! The pipeline, one file per step (decoding, normalisation and alignment
//! live in visage-image, below training and inference alike, and are
//! re-exported here so one import path serves every step):
//! - [`decode`]: any JPEG/PNG/WebP/BMP to upright 8-bit RGB, refusing
//!   decompression bombs before decoding;
//! - [`similarity`] + [`warp`] = [`align`]: the 5-landmark Umeyama similarity
//!   onto insightface's template and the `cv2.warpAffine`-equivalent warp into
//!   a 112×112 crop;
//! - [`onnxruntime`]: where the ONNX Runtime library comes from (found, or the
//!   pinned PyPI wheel fetched and hash-checked into a cache);
//! - [`onnx_model`]: a session whose input/output shapes come from the model;
//! - [`detector`]: SCRFD and YuNet, letterboxed input, shared NMS, boxes and
//!   5 landmarks in photo pixels;
//! - [`preprocess`] + [`config`] = [`recognizer`]: per-model normalisation,
//!   batching, flip TTA, raw feature, its norm and the unit embedding;
//! - [`registry`] + [`bundled`]: model names resolved to configs and
//!   files; the default models compiled in, written to the cache on first use;
//! - [`pipeline`]: all of it over many photos, decoding on worker threads
//!   while the model thread detects and embeds, in bounded memory.

#![warn(missing_docs)]

pub mod bundled;
mod checksum;
pub mod config;
pub mod detector;
pub mod error;
pub mod onnx_model;
pub mod onnxruntime;
pub mod pipeline;
pub mod recognizer;
pub mod registry;
pub use visage_image::{align, decode, preprocess, similarity, warp};

pub use align::{align_face, alignment_transform, Landmarks, ALIGNED_SIZE, ARCFACE_TEMPLATE_112};
pub use config::{ModelFamily, RecognizerConfig};
pub use decode::DecodeOptions;
pub use detector::{Detection, Detector, DetectorConfig, DetectorFamily};
pub use error::{InferError, Result};
/// The decoded photo type `load_rgb` returns.
pub use image::RgbImage;
pub use onnx_model::{OnnxModel, TensorSpec};
pub use onnxruntime::{environment, locate_onnxruntime, ONNXRUNTIME_VERSION};
pub use pipeline::{FacePipeline, PhotoFace, PhotoFaces, PhotoOutcome, PipelineOptions, StageTimes};
pub use preprocess::{ChannelOrder, Normalization};
pub use recognizer::{FaceEmbedding, Recognizer};
pub use registry::{CatalogEntry, ModelKind, ModelRegistry, ModelStatus};
pub use similarity::Similarity;
pub use warp::warp_affine_bilinear;

/// [`visage_image::decode_rgb`] with visage-infer's error type.
pub fn decode_rgb(bytes: &[u8], name: &std::path::Path, options: &DecodeOptions) -> Result<RgbImage> {
    visage_image::decode_rgb(bytes, name, options).map_err(InferError::from)
}

/// [`visage_image::load_rgb`] with visage-infer's error type.
pub fn load_rgb(path: &std::path::Path, options: &DecodeOptions) -> Result<RgbImage> {
    visage_image::load_rgb(path, options).map_err(InferError::from)
}
