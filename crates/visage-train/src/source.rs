//! The training data as one [`FaceSource`]: an insightface RecordIO file or
//! an image folder, chosen by what the path is.

use std::path::Path;

use visage_data::{DecodeOptions, FaceSource, ImageFolder, LabelledImage, RecordDataset};

use crate::error::Result;

/// The training data: an insightface RecordIO file or an image folder.
pub enum TrainSource {
    /// A `.rec` with its `.idx` (labels from the record headers).
    Record(RecordDataset),
    /// One sub-folder per identity, labels in sorted folder-name order.
    Folder(ImageFolder),
}

impl TrainSource {
    /// A folder is read as one sub-folder per identity; anything else as a `.rec`.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(if path.is_dir() { Self::Folder(ImageFolder::scan(path)?) } else { Self::Record(RecordDataset::open(path)?) })
    }
}

impl FaceSource for TrainSource {
    fn len(&self) -> usize {
        match self {
            Self::Record(source) => FaceSource::len(source),
            Self::Folder(source) => FaceSource::len(source),
        }
    }

    fn num_classes(&self) -> Option<usize> {
        match self {
            Self::Record(source) => FaceSource::num_classes(source),
            Self::Folder(source) => FaceSource::num_classes(source),
        }
    }

    fn load(&self, index: usize, decode: &DecodeOptions) -> visage_data::Result<LabelledImage> {
        match self {
            Self::Record(source) => source.load(index, decode),
            Self::Folder(source) => source.load(index, decode),
        }
    }
}
