//! An image folder into insightface's `train.rec` + `train.idx`.
//!
//! Layout (what insightface's packing scripts produce, docs/spec/formats.md):
//! key 0 is the header whose label vector is `(id_start, id_end)`; keys
//! `1 … N` are the images in folder order with their label as a scalar float
//! (`id` = the key); keys `N+1 … N+C` are one record per identity with the
//! label vector `(first image key, one past its last)`. Images are stored as
//! they are (the folder is taken to hold aligned crops): JPEG bytes are copied
//! unchanged, other formats are decoded and JPEG-encoded. Every image is
//! decoded once while packing, so a file that would fail in training is
//! reported and left out here instead.

use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use rayon::prelude::*;
use visage_image::{decode_rgb, DecodeOptions};

use crate::error::{DataError, Result};
use crate::folder::ImageFolder;
use crate::recordio::{ImageRecord, RecordWriter};

/// Settings of [`pack_folder`].
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// Quality of the JPEG encoding of non-JPEG inputs (insightface's packing
    /// scripts default to 95), in 1..=100.
    pub jpeg_quality: u8,
    /// Decoder limits applied to every input file.
    pub decode: DecodeOptions,
    /// Images decoded in parallel between two sequential writes (default
    /// 256; 0 counts as 1); `progress` is called once per chunk.
    pub chunk_size: usize,
}

impl Default for PackOptions {
    fn default() -> Self {
        Self { jpeg_quality: 95, decode: DecodeOptions::default(), chunk_size: 256 }
    }
}

/// What [`pack_folder`] wrote and left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackReport {
    /// Image records written (keys `1..=images_written`).
    pub images_written: usize,
    /// Identity records written: every identity folder, empty ones included.
    pub identities: usize,
    /// JPEG files whose bytes were copied as they are.
    pub jpeg_copied: usize,
    /// Other formats, decoded and JPEG-encoded.
    pub reencoded: usize,
    /// (width, height) → count in pixels, sorted by size, to spot a folder
    /// that is not all 112×112.
    pub sizes: Vec<((u32, u32), usize)>,
    /// Files left out, and why (the reason without the path): the folder
    /// scan's [`ImageFolder::skipped`] entries, then undecodable files.
    pub skipped: Vec<(PathBuf, String)>,
}

/// A JPEG starts with SOI (FF D8) and a marker (FF).
fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

struct Prepared {
    jpeg: Vec<u8>,
    size: (u32, u32),
    copied: bool,
}

fn prepare(path: &Path, options: &PackOptions) -> Result<Prepared> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, "cannot read", e))?;
    let image = decode_rgb(&bytes, path, &options.decode)?;
    let size = image.dimensions();
    if is_jpeg(&bytes) {
        return Ok(Prepared { jpeg: bytes, size, copied: true });
    }
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, options.jpeg_quality)
        .encode_image(&image)
        .map_err(|e| DataError::Folder { path: path.to_path_buf(), message: format!("cannot encode as JPEG: {e}") })?;
    Ok(Prepared { jpeg, size, copied: false })
}

/// Packs `folder` into `rec_path` and the `.idx` beside it. `progress` is
/// called with (files done, files total) after each chunk. Undecodable files
/// are left out and listed in the report; the call fails when the JPEG
/// quality is outside 1..=100, no file could be packed, or writing fails, and
/// the output files appear only when it succeeds ([`RecordWriter`]).
pub fn pack_folder(folder: &ImageFolder, rec_path: &Path, options: &PackOptions, mut progress: impl FnMut(usize, usize)) -> Result<PackReport> {
    if !(1..=100).contains(&options.jpeg_quality) {
        return Err(DataError::Config(format!("JPEG quality {} is not in 1..=100", options.jpeg_quality)));
    }
    let mut report = PackReport { skipped: folder.skipped().to_vec(), ..PackReport::default() };
    let mut sizes = std::collections::BTreeMap::new();
    let classes = folder.num_classes();
    let mut packer = InsightfacePacker::create(rec_path, classes)?;
    let total = folder.len();
    let mut done = 0;
    for chunk in folder.images().chunks(options.chunk_size.max(1)) {
        let prepared: Vec<Result<Prepared>> = chunk.par_iter().map(|item| prepare(&item.path, options)).collect();
        for (item, result) in chunk.iter().zip(prepared) {
            match result {
                Ok(image) => {
                    packer.push(item.label, image.jpeg)?;
                    report.images_written += 1;
                    if image.copied {
                        report.jpeg_copied += 1;
                    } else {
                        report.reencoded += 1;
                    }
                    *sizes.entry(image.size).or_insert(0) += 1;
                }
                Err(e) => {
                    // The path is the first item of the pair; keep only the reason.
                    let message = e.to_string();
                    let prefix = format!("{}: ", item.path.display());
                    let reason = message.strip_prefix(&prefix).map_or(message.clone(), str::to_string);
                    report.skipped.push((item.path.clone(), reason));
                }
            }
        }
        done += chunk.len();
        progress(done, total);
    }
    if report.images_written == 0 {
        let first = report.skipped.first().map_or(String::new(), |(path, why)| format!("; first: {}: {why}", path.display()));
        return Err(DataError::Folder {
            path: folder.root().to_path_buf(),
            message: format!("no readable image, nothing packed ({} files skipped{first})", report.skipped.len()),
        });
    }
    packer.finish().map_err(|e| match e {
        DataError::Config(message) => DataError::Folder { path: folder.root().to_path_buf(), message },
        other => other,
    })?;
    report.identities = classes;
    report.sizes = sizes.into_iter().collect();
    Ok(report)
}

/// Writes insightface's layout record by record: the header (key 0, its id
/// range rewritten at the end), image records with keys 1, 2, … in the order
/// they are pushed, then one identity record per class. Used by
/// [`pack_folder`] and by anything else that writes a `.rec` of labelled
/// images (a cleaned copy of a `.rec`, for one).
pub struct InsightfacePacker {
    writer: RecordWriter,
    header_offset: u64,
    /// Per class, (first image key, one past its last); (0, 0) while empty.
    class_ranges: Vec<(u64, u64)>,
    next_key: u64,
}

impl InsightfacePacker {
    /// Starts `rec_path` (and the `.idx` beside it) for `classes` identities.
    pub fn create(rec_path: &Path, classes: usize) -> Result<Self> {
        let mut writer = RecordWriter::create(rec_path)?;
        // The header's id range is known only at the end; its framed size does
        // not depend on the values, so a placeholder is written now and rewritten.
        let header_offset = writer.write(0, &header_record(0, 0).to_bytes())?;
        Ok(Self { writer, header_offset, class_ranges: vec![(0, 0); classes], next_key: 1 })
    }

    /// Appends one image (encoded bytes, stored as they are) of class `label`;
    /// returns its key. Images of one class are expected consecutively, as
    /// insightface's identity records hold one key range per class.
    pub fn push(&mut self, label: u32, image: Vec<u8>) -> Result<u64> {
        let classes = self.class_ranges.len();
        let range = self
            .class_ranges
            .get_mut(label as usize)
            .ok_or_else(|| DataError::Config(format!("label {label} is outside the {classes} identities being packed")))?;
        let key = self.next_key;
        self.writer.write(key, &ImageRecord::with_scalar_label(label as f32, key, 0, image).to_bytes())?;
        if range.0 == range.1 {
            range.0 = key;
        }
        range.1 = key + 1;
        self.next_key += 1;
        Ok(key)
    }

    /// Images pushed so far.
    pub fn images(&self) -> usize {
        (self.next_key - 1) as usize
    }

    /// Writes the identity records, rewrites the header and renames both
    /// files into place.
    pub fn finish(mut self) -> Result<()> {
        if self.next_key > 1 << 24 {
            return Err(DataError::Config(format!("{} images: keys above 2^24 do not fit the float label ranges exactly", self.next_key - 1)));
        }
        let id_start = self.next_key;
        for (label, (first, end)) in self.class_ranges.iter().enumerate() {
            let key = id_start + label as u64;
            self.writer.write(key, &ImageRecord::with_label_vector(vec![*first as f32, *end as f32], key, 0, Vec::new()).to_bytes())?;
        }
        let id_end = id_start + self.class_ranges.len() as u64;
        self.writer.overwrite(self.header_offset, &header_record(id_start, id_end).to_bytes())?;
        self.writer.finish()
    }
}

fn header_record(id_start: u64, id_end: u64) -> ImageRecord {
    ImageRecord::with_label_vector(vec![id_start as f32, id_end as f32], 0, 0, Vec::new())
}
