//! visage-data: the training data side of visage.
//!
//! - [`recordio`]: insightface's `train.rec` + `train.idx` (MXNet RecordIO),
//!   read with random access or by a sequential walk, and written atomically;
//! - [`folder`]: image folders, one sub-folder per identity;
//! - [`pack`]: an image folder (or any labelled images) into a `.rec`/`.idx` pair;
//! - [`source`]: one trait over both, a decoded image and its label per index;
//! - [`augment`]: flip, crop/pad, blur, colour jitter on 8-bit RGB;
//! - [`loader`]: shuffled, sharded, multi-threaded, resumable batches
//!   (NCHW `f32`), deterministic for a (seed, epoch, rank) whatever the
//!   thread count.
//!
//! Decoding and normalisation come from `visage-image` (`decode_rgb`,
//! `Normalization`), the crate inference uses too, so a training crop and an
//! inference crop go through the same code.

#![warn(missing_docs)]

pub mod augment;
pub mod degrade;
pub mod error;
pub mod folder;
pub mod loader;
pub mod pack;
pub mod recordio;
mod seed;
pub mod source;
pub mod split;

pub use augment::Augmentation;
pub use error::{DataError, Result};
pub use folder::ImageFolder;
pub use loader::{Batch, Loader, LoaderConfig, SkippedSample};
pub use pack::{pack_folder, InsightfacePacker, PackOptions, PackReport};
pub use recordio::{RecordDataset, RecordFile, RecordWriter};
pub use source::{FaceSource, LabelledImage};
pub use visage_image::{ChannelOrder, DecodeOptions, Normalization};
