//! insightface's use of a `.rec`: record 0 may be a header whose label vector
//! is `(id_start, id_end)`; keys `1 … id_start−1` are then the images and
//! `id_start … id_end−1` one record per identity (docs/spec/formats.md).
//! Without such a header every key is an image.

use std::path::Path;

use super::file::{IndexEntry, RecordFile};
use super::irheader::ImageRecord;
use crate::error::{DataError, Result};

/// The id range of insightface's header record 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentityRange {
    /// First identity record key = one past the last image key.
    pub id_start: u64,
    /// One past the last identity record key.
    pub id_end: u64,
}

impl IdentityRange {
    /// `id_end − id_start`: the number of classes.
    pub fn num_identities(&self) -> u64 {
        self.id_end - self.id_start
    }
}

/// One image record, its identity label checked to be a class index.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledRecord {
    /// The record's key in the `.rec`.
    pub key: u64,
    /// The record's primary label as a class index: a whole number below
    /// 2^24 and, with insightface's header, below the identity count.
    pub label: u32,
    /// The parsed record (its image bytes are non-empty).
    pub record: ImageRecord,
}

/// A `.rec` read as insightface's training set: the image records, their
/// labels, and the identity count when record 0 is insightface's header.
#[derive(Debug)]
pub struct RecordDataset {
    records: RecordFile,
    /// Positions in `records.entries()` (sorted by key) of the image
    /// records: image keys are contiguous, so a range, not a second table
    /// (tens of millions of entries on the largest public sets).
    images: std::ops::Range<usize>,
    identity_range: Option<IdentityRange>,
}

impl RecordDataset {
    /// Opens `train.rec` (with `train.idx` beside it when present).
    pub fn open(rec_path: &Path) -> Result<Self> {
        Self::from_records(RecordFile::open(rec_path)?)
    }

    /// Interprets an opened file. With insightface's header (record 0:
    /// label vector `(id_start, id_end)`, no image) the images are keys
    /// `1..id_start` and every one of them must be indexed; without one every
    /// key is an image. Fails with [`DataError::Corrupt`] when the header is
    /// unreadable or inconsistent with the index, or there is no image record.
    pub fn from_records(records: RecordFile) -> Result<Self> {
        let header = match records.offset_of(0) {
            Some(_) => {
                let record = records.read_image_record(0).map_err(|e| match e {
                    DataError::BadRecord { path, message, .. } => DataError::corrupt(path, format!("record 0 (the header) is unreadable: {message}")),
                    other => other,
                })?;
                header_range(&record).map_err(|message| DataError::corrupt(records.path(), message))?
            }
            None => None,
        };
        let entries = records.entries();
        let images = match header {
            Some(range) => {
                let first = entries.partition_point(|e| e.key < 1);
                let end = entries.partition_point(|e| e.key < range.id_start);
                let images = first..end;
                if images.len() as u64 != range.id_start - 1 {
                    let missing = (1..range.id_start).find(|&k| records.offset_of(k).is_none()).unwrap_or(0);
                    return Err(DataError::corrupt(
                        records.path(),
                        format!(
                            "header record 0 says images are keys 1..{} but the index has {} of them (key {missing} is missing)",
                            range.id_start - 1,
                            images.len()
                        ),
                    ));
                }
                images
            }
            None => 0..entries.len(),
        };
        if images.is_empty() {
            return Err(DataError::corrupt(records.path(), "no image records"));
        }
        // insightface's layout stores one record per identity, so the range
        // cannot name more identities than the file has records; the bound
        // keeps a forged header from sizing a classifier of 2^24 classes.
        if let Some(range) = header {
            if range.num_identities() > entries.len() as u64 {
                return Err(DataError::corrupt(
                    records.path(),
                    format!(
                        "header record 0 names {} identities (keys {}..{}) but the file holds only {} records",
                        range.num_identities(),
                        range.id_start,
                        range.id_end,
                        entries.len()
                    ),
                ));
            }
        }
        Ok(Self { records, images, identity_range: header })
    }

    /// The underlying file (every record, metadata records included).
    pub fn records(&self) -> &RecordFile {
        &self.records
    }

    /// Path of the `.rec`.
    pub fn path(&self) -> &Path {
        self.records.path()
    }

    /// Number of image records.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there is no image record (never true once opened).
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The header's identity record range; `None` without insightface's header.
    pub fn identity_range(&self) -> Option<IdentityRange> {
        self.identity_range
    }

    /// Number of identities, known when the file has insightface's header.
    pub fn num_classes(&self) -> Option<usize> {
        self.identity_range.map(|r| r.num_identities() as usize)
    }

    fn entry(&self, index: usize) -> IndexEntry {
        assert!(index < self.images.len(), "image {index} of {}", self.images.len());
        self.records.entries()[self.images.start + index]
    }

    /// Key of the `index`-th image record. Panics when `index >= len()`.
    pub fn image_key(&self, index: usize) -> u64 {
        self.entry(index).key
    }

    /// The `index`-th image record (0-based among images) with its label.
    /// A record that cannot be read, has no image bytes, or whose label is not
    /// a valid class index is a [`DataError::BadRecord`]. Panics when
    /// `index >= len()`.
    pub fn read_image(&self, index: usize) -> Result<LabelledRecord> {
        let IndexEntry { key, offset } = self.entry(index);
        let payload = self.records.read_at(key, offset)?;
        let record = ImageRecord::parse(payload).map_err(|m| self.records.bad(key, offset, m))?;
        let label = class_index(record.primary_label()).map_err(|m| self.records.bad(key, offset, m))?;
        if let Some(classes) = self.num_classes() {
            if label as usize >= classes {
                return Err(self.records.bad(key, offset, format!("label {label} is outside the header's {classes} identities")));
            }
        }
        if record.image.is_empty() {
            return Err(self.records.bad(key, offset, "no image bytes after the header".into()));
        }
        Ok(LabelledRecord { key, label, record })
    }
}

/// insightface's header: `flag > 0`, no image, labels `(id_start, id_end)`.
fn header_range(record: &ImageRecord) -> Result<Option<IdentityRange>, String> {
    if record.flag == 0 || !record.image.is_empty() || record.label_vector.len() < 2 {
        return Ok(None);
    }
    let bound = |value: f32, name: &str| class_index(value).map(u64::from).map_err(|m| format!("header record 0: {name}: {m}"));
    let id_start = bound(record.label_vector[0], "id_start")?;
    let id_end = bound(record.label_vector[1], "id_end")?;
    if id_start < 1 || id_end < id_start {
        return Err(format!("header record 0: id range ({id_start}, {id_end}) is not 1 <= id_start <= id_end"));
    }
    Ok(Some(IdentityRange { id_start, id_end }))
}

/// Labels are stored as floats; a class index must be a whole, non-negative
/// number that a float holds exactly (below 2^24).
pub(crate) fn class_index(value: f32) -> Result<u32, String> {
    const EXACT_LIMIT: f32 = 16_777_216.0;
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value < EXACT_LIMIT {
        Ok(value as u32)
    } else {
        Err(format!("label {value} is not a whole number in 0..2^24"))
    }
}
