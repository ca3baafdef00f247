//! A `.rec` file with its key → byte offset table: from `train.idx` when it is
//! there, otherwise built by walking the record headers once.
//!
//! Everything that makes the file unusable is found when opening, so a
//! training run does not die hours in: an index entry past the end, a last
//! record that runs past the end (truncated download or copy), or bytes after
//! the last indexed record (an index written for another file). A single bad
//! record inside the file is the reader's error for that key only; loaders
//! skip it and count it.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::frame::{self, FrameError, MAGIC};
use super::irheader::ImageRecord;
use crate::error::{DataError, Result};

/// Where the key → offset table came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexSource {
    /// Read from this `.idx` file.
    IdxFile(PathBuf),
    /// Built by a sequential walk of the `.rec` (keys are positions in the
    /// file: 0, 1, 2, …); corrupt stretches were stepped over.
    Scanned {
        /// Number of unreadable stretches stepped over.
        corrupt_regions: usize,
        /// Total bytes in those stretches.
        corrupt_bytes: u64,
    },
}

/// One line of the key table: a record's key and where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The record's key (the `.idx` key, or its position in a scanned file).
    pub key: u64,
    /// Byte offset of the record's first part header in the `.rec`; a multiple of 4.
    pub offset: u64,
}

/// An open `.rec` with its key → offset table, checked when opened. Reads
/// are positioned, so one `RecordFile` serves many threads without a lock.
#[derive(Debug)]
pub struct RecordFile {
    rec_path: PathBuf,
    file: File,
    file_len: u64,
    /// Sorted by key, keys unique.
    entries: Vec<IndexEntry>,
    /// Every offset in increasing order, kept only when key order is not
    /// offset order (a shuffled im2rec list); otherwise `entries` serves.
    offsets_sorted: Option<Vec<u64>>,
    index_source: IndexSource,
}

/// The `.idx` beside a `.rec`: same name, extension `idx`.
pub fn index_path_for(rec_path: &Path) -> PathBuf {
    rec_path.with_extension("idx")
}

impl RecordFile {
    /// Opens `rec_path` with the `.idx` beside it, or walks the file when there is none.
    pub fn open(rec_path: &Path) -> Result<Self> {
        let idx_path = index_path_for(rec_path);
        if idx_path.is_file() {
            Self::open_with_index(rec_path, &idx_path)
        } else {
            Self::open_scan(rec_path)
        }
    }

    /// Opens `rec_path` with the key table of `idx_path` (MXNet's
    /// `key<TAB>offset` lines, docs/spec/formats.md). Fails when a line is
    /// malformed ([`DataError::Index`]), or the index is empty, lists a key
    /// or an offset twice, or does not end exactly at the end of the `.rec`
    /// ([`DataError::Corrupt`]).
    pub fn open_with_index(rec_path: &Path, idx_path: &Path) -> Result<Self> {
        let (file, file_len) = open_rec(rec_path)?;
        let idx_file = File::open(idx_path).map_err(|e| DataError::io(idx_path, "cannot read the index", e))?;
        let mut entries = parse_index(std::io::BufReader::new(idx_file), idx_path, file_len)?;
        if entries.is_empty() {
            return Err(DataError::corrupt(idx_path, "the index lists no records"));
        }
        entries.sort_unstable_by_key(|e| e.key);
        if let Some(pair) = entries.windows(2).find(|w| w[0].key == w[1].key) {
            return Err(DataError::corrupt(idx_path, format!("key {} is listed twice", pair[0].key)));
        }
        // Two keys at one offset would read the same bytes as two images.
        let offsets_sorted = if entries.windows(2).all(|w| w[0].offset < w[1].offset) {
            None
        } else {
            let mut offsets: Vec<(u64, u64)> = entries.iter().map(|e| (e.offset, e.key)).collect();
            offsets.sort_unstable();
            if let Some(pair) = offsets.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(DataError::corrupt(
                    idx_path,
                    format!("keys {} and {} both point at byte {}: an index lists each record once", pair[0].1, pair[1].1, pair[0].0),
                ));
            }
            Some(offsets.into_iter().map(|(offset, _)| offset).collect())
        };
        let last = *entries.iter().max_by_key(|e| e.offset).unwrap();
        let end = frame::record_end(&file, last.offset, file_len).map_err(|e| {
            DataError::corrupt(
                rec_path,
                format!("the last indexed record (key {} at byte {}) is unreadable at byte {}: {}", last.key, last.offset, e.at, e.message),
            )
        })?;
        if end != file_len {
            return Err(DataError::corrupt(
                rec_path,
                format!(
                    "{} bytes follow the last indexed record (key {} ends at byte {end}, the file has {file_len}): {} does not describe this file (stale or partial index?)",
                    file_len - end,
                    last.key,
                    idx_path.display()
                ),
            ));
        }
        Ok(Self {
            rec_path: rec_path.to_path_buf(),
            file,
            file_len,
            entries,
            offsets_sorted,
            index_source: IndexSource::IdxFile(idx_path.to_path_buf()),
        })
    }

    /// Indexes the file by walking record headers from the start (no payload
    /// is read). A corrupt stretch is stepped over by searching for the next
    /// aligned magic word that starts a readable record; a file whose end
    /// cannot be reached that way (truncated) is an error.
    pub fn open_scan(rec_path: &Path) -> Result<Self> {
        let (file, file_len) = open_rec(rec_path)?;
        let mut entries = Vec::new();
        let (mut corrupt_regions, mut corrupt_bytes) = (0usize, 0u64);
        let mut position = 0u64;
        let mut visited = frame::VisitedParts::default();
        let mut pruned_below = 0u64;
        while position < file_len {
            if position >> 20 > pruned_below >> 20 {
                visited.forget_below(position);
                pruned_below = position;
            }
            match frame::record_end_scanning(&file, position, file_len, &mut visited) {
                Ok(end) => {
                    entries.push(IndexEntry { key: entries.len() as u64, offset: position });
                    position = end;
                }
                Err(error) => {
                    let Some((next, end)) = next_record_start(&file, rec_path, position + 4, file_len, &mut visited)? else {
                        return Err(DataError::corrupt(
                            rec_path,
                            format!(
                                "no readable record from byte {position} to the end ({file_len} bytes), truncated or corrupt: at byte {}: {}",
                                error.at, error.message
                            ),
                        ));
                    };
                    corrupt_regions += 1;
                    corrupt_bytes += next - position;
                    entries.push(IndexEntry { key: entries.len() as u64, offset: next });
                    position = end;
                }
            }
        }
        if entries.is_empty() {
            return Err(DataError::corrupt(rec_path, "empty file: no records"));
        }
        Ok(Self {
            rec_path: rec_path.to_path_buf(),
            file,
            file_len,
            entries,
            offsets_sorted: None,
            index_source: IndexSource::Scanned { corrupt_regions, corrupt_bytes },
        })
    }

    /// Path of the `.rec`.
    pub fn path(&self) -> &Path {
        &self.rec_path
    }

    /// Size of the `.rec` in bytes when it was opened.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Whether the key table came from a `.idx` or a walk of the file.
    pub fn index_source(&self) -> &IndexSource {
        &self.index_source
    }

    /// Number of records (every key, images and metadata records alike).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no record (never true once opened).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries sorted by key.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// Byte offset of record `key`; `None` when the key is not in the table.
    pub fn offset_of(&self, key: u64) -> Option<u64> {
        self.entries.binary_search_by_key(&key, |e| e.key).ok().map(|i| self.entries[i].offset)
    }

    /// The raw bytes of record `key` (framing removed, parts joined).
    pub fn read(&self, key: u64) -> Result<Vec<u8>> {
        let offset = self.offset_of(key).ok_or_else(|| self.bad(key, 0, "key not in the index".to_string()))?;
        self.read_at(key, offset)
    }

    /// Record `key` parsed as an image record (header, labels, image bytes).
    pub fn read_image_record(&self, key: u64) -> Result<ImageRecord> {
        let offset = self.offset_of(key).ok_or_else(|| self.bad(key, 0, "key not in the index".to_string()))?;
        let payload = self.read_at(key, offset)?;
        ImageRecord::parse(payload).map_err(|message| self.bad(key, offset, message))
    }

    /// Where the record at `offset` must end at the latest: the next indexed
    /// offset (records never overlap), or the end of the file.
    fn record_limit(&self, offset: u64) -> u64 {
        let next = match &self.offsets_sorted {
            None => self.entries.get(self.entries.partition_point(|e| e.offset <= offset)).map(|e| e.offset),
            Some(offsets) => offsets.get(offsets.partition_point(|&o| o <= offset)).copied(),
        };
        next.unwrap_or(self.file_len)
    }

    pub(crate) fn read_at(&self, key: u64, offset: u64) -> Result<Vec<u8>> {
        frame::read_record_within(&self.file, offset, self.file_len, self.record_limit(offset)).map(|(bytes, _)| bytes).map_err(
            |FrameError { at, message }| {
                let message = if at == offset { message } else { format!("part at byte {at}: {message}") };
                self.bad(key, offset, message)
            },
        )
    }

    pub(crate) fn bad(&self, key: u64, offset: u64, message: String) -> DataError {
        DataError::BadRecord { path: self.rec_path.clone(), key, offset, message }
    }
}

fn open_rec(rec_path: &Path) -> Result<(File, u64)> {
    let file = File::open(rec_path).map_err(|e| DataError::io(rec_path, "cannot open the record file", e))?;
    let file_len = file.metadata().map_err(|e| DataError::io(rec_path, "cannot read the file size", e))?.len();
    Ok((file, file_len))
}

/// Longest accepted `.idx` line: `key<TAB>offset` is at most 41 characters;
/// the cap stops a file without newlines from being buffered whole.
pub const MAX_INDEX_LINE_BYTES: usize = 1024;

/// `key<TAB>offset` per line (MXNet's `MXIndexedRecordIO`); blank lines are ignored.
/// Read line by line: the index of a large set is hundreds of megabytes.
/// Every offset must leave room for a record header inside the `.rec`, and no
/// two keys may share an offset (checked by the caller after sorting).
fn parse_index(mut reader: impl std::io::BufRead, idx_path: &Path, file_len: u64) -> Result<Vec<IndexEntry>> {
    use std::io::{BufRead, Read};
    let mut entries = Vec::new();
    let mut buffer = Vec::new();
    let mut line_number = 0usize;
    loop {
        buffer.clear();
        let read = (&mut reader)
            .take(MAX_INDEX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buffer)
            .map_err(|e| DataError::io(idx_path, "cannot read the index", e))?;
        if read == 0 {
            break;
        }
        line_number += 1;
        let bad = |message: String| DataError::Index { path: idx_path.to_path_buf(), line: line_number, message };
        if buffer.len() > MAX_INDEX_LINE_BYTES && buffer.last() != Some(&b'\n') {
            return Err(bad(format!("line longer than {MAX_INDEX_LINE_BYTES} bytes: not a RecordIO index")));
        }
        let line = std::str::from_utf8(&buffer).map_err(|_| bad("not text: expected 'key<TAB>byte_offset' lines".into()))?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(key), Some(offset), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(bad(format!("expected 'key<TAB>byte_offset', found {line:?}")));
        };
        let key: u64 = key.parse().map_err(|_| bad(format!("key {key:?} is not a non-negative integer")))?;
        let offset: u64 = offset.parse().map_err(|_| bad(format!("offset {offset:?} is not a non-negative integer")))?;
        if !offset.is_multiple_of(4) {
            return Err(bad(format!("offset {offset} of key {key} is not a multiple of 4 (records are 4-byte aligned)")));
        }
        if offset >= file_len {
            return Err(bad(format!(
                "offset {offset} of key {key} is past the end of the record file ({file_len} bytes): truncated .rec, or an index for another file"
            )));
        }
        if offset + 8 > file_len {
            return Err(bad(format!(
                "offset {offset} of key {key} leaves no room for a record header before the end of the record file ({file_len} bytes): truncated .rec, or an index for another file"
            )));
        }
        entries.push(IndexEntry { key, offset });
    }
    Ok(entries)
}

/// The first 4-byte-aligned offset at or after `from` where a readable record
/// starts (magic, a first-part flag, and parts that stay inside the file),
/// with the offset just past that record.
fn next_record_start(
    file: &File,
    rec_path: &Path,
    from: u64,
    file_len: u64,
    visited: &mut frame::VisitedParts,
) -> Result<Option<(u64, u64)>, DataError> {
    const BLOCK: usize = 1 << 16;
    let magic = MAGIC.to_le_bytes();
    let mut block_start = from.div_ceil(4) * 4;
    let mut buffer = vec![0u8; BLOCK];
    while block_start + 8 <= file_len {
        let length = (file_len - block_start).min(BLOCK as u64) as usize;
        frame::read_exact_at(file, &mut buffer[..length], block_start)
            .map_err(|e| DataError::io(rec_path, "cannot read while searching for the next record", e))?;
        for relative in (0..length.saturating_sub(3)).step_by(4) {
            if buffer[relative..relative + 4] == magic {
                let candidate = block_start + relative as u64;
                if let Ok(end) = frame::record_end_scanning(file, candidate, file_len, visited) {
                    return Ok(Some((candidate, end)));
                }
            }
        }
        block_start += length as u64;
    }
    Ok(None)
}
