//! Margin heads for face recognition — softmax, NormFace, SphereFace, CosFace,
//! ArcFace, combined margins, sub-center ArcFace, MagFace, AdaFace and SV-AM-Softmax — and
//! Partial FC, exactly as `docs/spec/heads.md` defines them, generic over burn's
//! backend so autodiff gives both gradients.

#![warn(missing_docs)]

pub mod angular;
pub mod case;
pub mod config;
pub mod error;
pub mod head;
pub mod heads;
pub mod magface_theory;
pub mod partial_fc;

pub use config::HeadConfig;
pub use error::HeadError;
pub use head::{CentreShard, HeadOutput, MarginHead, ShardedOutput, SplitOutput, SplitRank};
pub use heads::adaface::AdaFaceState;
pub use partial_fc::{PartialFc, PartialFcConfig, SplitPartialFcOutput};
