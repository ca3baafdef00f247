//! One view over the two training sources: sample `index` → decoded RGB image
//! and class label. Shared across loader threads, so `Send + Sync` and `&self`.

use visage_image::{decode_rgb, load_rgb, DecodeOptions, RgbImage};

use crate::error::Result;
use crate::folder::ImageFolder;
use crate::recordio::RecordDataset;

/// One decoded training sample.
#[derive(Clone, Debug)]
pub struct LabelledImage {
    /// The image, upright 8-bit RGB at its stored size (the loader resizes).
    pub image: RgbImage,
    /// Class index, below [`FaceSource::num_classes`] when that is known.
    pub label: u32,
}

/// Indexed access to labelled face images: what [`crate::Loader`] reads.
/// Implemented for [`RecordDataset`] and [`ImageFolder`].
pub trait FaceSource: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether there is no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of identities when the source knows it.
    fn num_classes(&self) -> Option<usize>;

    /// Reads and decodes sample `index` (`index < len()`).
    fn load(&self, index: usize, decode: &DecodeOptions) -> Result<LabelledImage>;
}

impl FaceSource for RecordDataset {
    fn len(&self) -> usize {
        RecordDataset::len(self)
    }

    fn num_classes(&self) -> Option<usize> {
        RecordDataset::num_classes(self)
    }

    fn load(&self, index: usize, decode: &DecodeOptions) -> Result<LabelledImage> {
        let record = self.read_image(index)?;
        // Messages name the record: "train.rec#key 42: cannot decode …".
        let name = format!("{}#key {}", self.path().display(), record.key);
        let image = decode_rgb(&record.record.image, name.as_ref(), decode)?;
        Ok(LabelledImage { image, label: record.label })
    }
}

impl FaceSource for ImageFolder {
    fn len(&self) -> usize {
        ImageFolder::len(self)
    }

    fn num_classes(&self) -> Option<usize> {
        Some(ImageFolder::num_classes(self))
    }

    fn load(&self, index: usize, decode: &DecodeOptions) -> Result<LabelledImage> {
        let item = &self.images()[index];
        Ok(LabelledImage { image: load_rgb(&item.path, decode)?, label: item.label })
    }
}
