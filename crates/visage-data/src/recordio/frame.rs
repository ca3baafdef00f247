//! MXNet/dmlc RecordIO framing (docs/spec/formats.md): each physical part is
//! `u32 magic`, `u32 lrecord` (continuation flag in the top 3 bits, length in
//! the low 29), the bytes, zero padding to a multiple of 4.
//!
//! A logical record whose bytes contain the magic word at a 4-byte-aligned
//! position is split there by dmlc's writer: the magic is dropped and each
//! piece becomes a part with flag 1 (first), 2 (middle) or 3 (last); a reader
//! joins the pieces with the magic put back. Without the split a reader that
//! resynchronises on the magic would cut such a record in two; JPEG payloads
//! hit this about once in a few hundred thousand records, so both sides
//! implement it (tested against MXNet's own writer).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;

/// Marks the start of every part (little-endian in the file).
pub const MAGIC: u32 = 0xced7_230a;

thread_local! {
    static HEADER_READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many part headers this thread has read so far: the work a walk did,
/// so tests can bound it (a linear scan reads each position a constant
/// number of times; a quadratic one, once per record per position) instead
/// of timing it.
pub fn header_reads_on_this_thread() -> u64 {
    HEADER_READS.with(std::cell::Cell::get)
}
const LENGTH_BITS: u32 = 29;
const LENGTH_MASK: u32 = (1 << LENGTH_BITS) - 1;
/// Largest logical record dmlc accepts (its writer refuses `size >= 2^29`).
pub const MAX_RECORD_BYTES: usize = LENGTH_MASK as usize;

/// Continuation flag of a part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartKind {
    /// Flag 0: the whole logical record in one part.
    Whole = 0,
    /// Flag 1: the first piece of a split record.
    First = 1,
    /// Flag 2: a piece between the first and the last.
    Middle = 2,
    /// Flag 3: the last piece of a split record.
    Last = 3,
}

impl PartKind {
    fn from_flag(flag: u32) -> Option<Self> {
        match flag {
            0 => Some(Self::Whole),
            1 => Some(Self::First),
            2 => Some(Self::Middle),
            3 => Some(Self::Last),
            _ => None,
        }
    }
}

fn encode_lrecord(kind: PartKind, length: usize) -> u32 {
    ((kind as u32) << LENGTH_BITS) | length as u32
}

fn padded(length: u64) -> u64 {
    length.div_ceil(4) * 4
}

/// Appends one logical record to `out` (splitting it at aligned magic words)
/// and returns the number of bytes written.
pub fn write_record(out: &mut impl Write, record: &[u8]) -> std::io::Result<u64> {
    if record.len() > MAX_RECORD_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("a record of {} bytes is above RecordIO's limit of {MAX_RECORD_BYTES}", record.len()),
        ));
    }
    let magic = MAGIC.to_le_bytes();
    let mut written = 0u64;
    let mut part_start = 0usize;
    let mut write_part = |out: &mut dyn Write, kind: PartKind, bytes: &[u8]| -> std::io::Result<()> {
        out.write_all(&magic)?;
        out.write_all(&encode_lrecord(kind, bytes.len()).to_le_bytes())?;
        out.write_all(bytes)?;
        let padding = (padded(bytes.len() as u64) - bytes.len() as u64) as usize;
        out.write_all(&[0u8; 3][..padding])?;
        written += 8 + bytes.len() as u64 + padding as u64;
        Ok(())
    };
    let aligned_end = record.len() / 4 * 4;
    for position in (0..aligned_end).step_by(4) {
        if record[position..position + 4] == magic {
            let kind = if part_start == 0 { PartKind::First } else { PartKind::Middle };
            write_part(out, kind, &record[part_start..position])?;
            part_start = position + 4;
        }
    }
    let kind = if part_start == 0 { PartKind::Whole } else { PartKind::Last };
    write_part(out, kind, &record[part_start..])?;
    Ok(written)
}

/// Why the bytes at an offset are not a record; the caller adds file and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// Byte offset of the part that is wrong.
    pub at: u64,
    /// What is wrong there (without file name or key).
    pub message: String,
}

/// The bytes of the record starting at `offset` and the offset just past it
/// (padding included). `file_len` bounds every length before anything is
/// allocated, so a corrupt length word cannot ask for gigabytes.
pub fn read_record(file: &File, offset: u64, file_len: u64) -> Result<(Vec<u8>, u64), FrameError> {
    read_record_within(file, offset, file_len, file_len)
}

/// [`read_record`] for a record that must end by `limit`, the offset where
/// the next record of the index starts. Records of a `.rec` never overlap,
/// so a chain of parts that runs past the next record is corrupt; stopping
/// there also bounds the work of reading every record of a file to one pass
/// over it, even when a lying index points many keys into one long chain.
pub fn read_record_within(file: &File, offset: u64, file_len: u64, limit: u64) -> Result<(Vec<u8>, u64), FrameError> {
    let mut record = Vec::new();
    let mut parts = 0usize;
    let end = walk_parts_within(file, offset, file_len, limit.min(file_len), None, |part_offset, length| {
        // The writer dropped one magic word between consecutive parts.
        if parts > 0 {
            record.extend_from_slice(&MAGIC.to_le_bytes());
        }
        parts += 1;
        let start = record.len();
        record.resize(start + length as usize, 0);
        read_exact_at(file, &mut record[start..], part_offset + 8)
            .map_err(|e| FrameError { at: part_offset, message: format!("cannot read {length} bytes: {e}") })
    })?;
    Ok((record, end))
}

/// The offset just past the record starting at `offset`, reading only the part
/// headers (used to check a file's end and to index a file without `.idx`).
pub fn record_end(file: &File, offset: u64, file_len: u64) -> Result<u64, FrameError> {
    walk_parts(file, offset, file_len, None, |_, _| Ok(()))
}

/// [`record_end`] for a front-to-back scan: continuation parts walked once
/// are remembered in `visited`, and a record whose chain reaches one of them
/// is refused without walking it again.
///
/// Why that is right: a chain only moves forward, and a scan that reads a
/// record successfully resumes after its end, so a continuation part it has
/// already walked is either inside a record it accepted (never looked at
/// again) or on a chain that ended broken (and still does). Why it matters:
/// without it, a file of first parts that all jump into one long chain of
/// middle parts costs (first parts) × (chain length) header reads — hours
/// for a 1 MB file; with it every part header is read O(1) times.
pub fn record_end_scanning(file: &File, offset: u64, file_len: u64, visited: &mut VisitedParts) -> Result<u64, FrameError> {
    walk_parts(file, offset, file_len, Some(visited), |_, _| Ok(()))
}

/// A set of 4-byte-aligned file positions, as a bitmap allocated per MiB of
/// file that holds a member: an honest file with a few multi-part records
/// touches a few chunks; a hostile one costs at most one bit per 4 bytes.
#[derive(Debug, Default)]
pub struct VisitedParts {
    chunks: HashMap<u64, Box<[u64]>>,
}

impl VisitedParts {
    const CHUNK_SHIFT: u32 = 20;
    const WORDS: usize = (1 << Self::CHUNK_SHIFT) / 4 / 64;

    fn slot(position: u64) -> (u64, usize, u64) {
        let chunk = position >> Self::CHUNK_SHIFT;
        let bit = ((position & ((1 << Self::CHUNK_SHIFT) - 1)) >> 2) as usize;
        (chunk, bit / 64, 1u64 << (bit % 64))
    }

    /// Whether `position` was inserted (and not forgotten since).
    pub fn contains(&self, position: u64) -> bool {
        let (chunk, word, mask) = Self::slot(position);
        self.chunks.get(&chunk).is_some_and(|bits| bits[word] & mask != 0)
    }

    /// Adds `position` (meant to be 4-byte aligned: the two low bits are ignored).
    pub fn insert(&mut self, position: u64) {
        let (chunk, word, mask) = Self::slot(position);
        self.chunks.entry(chunk).or_insert_with(|| vec![0u64; Self::WORDS].into_boxed_slice())[word] |= mask;
    }

    /// Drops the chunks wholly below `position` (a scan never goes back).
    pub fn forget_below(&mut self, position: u64) {
        let first_kept = position >> Self::CHUNK_SHIFT;
        self.chunks.retain(|&chunk, _| chunk >= first_kept);
    }

    /// Chunks currently allocated (each 32 KiB).
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }
}

fn walk_parts(
    file: &File,
    offset: u64,
    file_len: u64,
    visited: Option<&mut VisitedParts>,
    on_part: impl FnMut(u64, u64) -> Result<(), FrameError>,
) -> Result<u64, FrameError> {
    walk_parts_within(file, offset, file_len, file_len, visited, on_part)
}

fn walk_parts_within(
    file: &File,
    offset: u64,
    file_len: u64,
    limit: u64,
    mut visited: Option<&mut VisitedParts>,
    mut on_part: impl FnMut(u64, u64) -> Result<(), FrameError>,
) -> Result<u64, FrameError> {
    let overlap = |at: u64, what: String| FrameError {
        at,
        message: format!("{what}, past byte {limit} where the next indexed record starts: overlapping records (an index for another file?)"),
    };
    let mut position = offset;
    let mut first = true;
    loop {
        if !first && limit < file_len && position >= limit {
            return Err(overlap(position, format!("the record continues at byte {position}")));
        }
        if !first {
            if let Some(visited) = visited.as_deref_mut() {
                if visited.contains(position) {
                    return Err(FrameError {
                        at: position,
                        message: "the record continues into a part already walked as part of another record".into(),
                    });
                }
                visited.insert(position);
            }
        }
        if position.checked_add(8).is_none_or(|header_end| header_end > file_len) {
            let what = if first { "a record header" } else { "the next part of a multi-part record" };
            return Err(FrameError { at: position, message: format!("file ends ({file_len} bytes) where {what} (8 bytes) should start: truncated") });
        }
        let mut header = [0u8; 8];
        HEADER_READS.with(|n| n.set(n.get() + 1));
        read_exact_at(file, &mut header, position).map_err(|e| FrameError { at: position, message: format!("cannot read a record header: {e}") })?;
        let magic = u32::from_le_bytes(header[..4].try_into().unwrap());
        if magic != MAGIC {
            return Err(FrameError { at: position, message: format!("expected the RecordIO magic 0x{MAGIC:08x}, found 0x{magic:08x}") });
        }
        let lrecord = u32::from_le_bytes(header[4..].try_into().unwrap());
        let kind = PartKind::from_flag(lrecord >> LENGTH_BITS)
            .ok_or_else(|| FrameError { at: position, message: format!("continuation flag {} is not 0–3", lrecord >> LENGTH_BITS) })?;
        let expected = if first { [PartKind::Whole, PartKind::First] } else { [PartKind::Middle, PartKind::Last] };
        if !expected.contains(&kind) {
            let context = if first { "a record starts" } else { "inside a multi-part record" };
            return Err(FrameError { at: position, message: format!("part kind {kind:?} where {context}") });
        }
        let length = u64::from(lrecord & LENGTH_MASK);
        // No overflow: position + 8 <= file_len and length < 2^29.
        let end = position + 8 + padded(length);
        if end > file_len {
            return Err(FrameError {
                at: position,
                message: format!("part of {length} bytes ends at byte {end}, past the end of the file ({file_len} bytes): truncated"),
            });
        }
        if end > limit {
            return Err(overlap(position, format!("part of {length} bytes ends at byte {end}")));
        }
        on_part(position, length)?;
        position = end;
        first = false;
        if matches!(kind, PartKind::Whole | PartKind::Last) {
            return Ok(position);
        }
    }
}

/// Positioned read that leaves the file cursor alone, so threads share one
/// open file without a lock.
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(record: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let written = write_record(&mut out, record).unwrap();
        assert_eq!(written, out.len() as u64);
        out
    }

    fn temp_file(bytes: &[u8]) -> (std::path::PathBuf, File) {
        let path = std::env::temp_dir().join(format!(
            "visage-data-frame-{}-{}.rec",
            std::process::id(),
            bytes.len() * 7919 + bytes.iter().map(|&b| b as usize).sum::<usize>()
        ));
        std::fs::write(&path, bytes).unwrap();
        let file = File::open(&path).unwrap();
        (path, file)
    }

    #[test]
    fn a_plain_record_is_one_padded_part() {
        let out = framed(b"abcde");
        // magic, lrecord = 5 (flag 0), 5 bytes, 3 zero bytes.
        assert_eq!(out, [&[0x0a, 0x23, 0xd7, 0xce, 5, 0, 0, 0][..], b"abcde", &[0, 0, 0]].concat());
        assert_eq!(framed(b"abcd").len(), 12, "no padding for a multiple of 4");
    }

    #[test]
    fn an_aligned_magic_splits_the_record_and_is_restored_on_reading() {
        let magic = MAGIC.to_le_bytes();
        // magic at offset 4 (aligned) and at offset 13 (not aligned: stays in the data).
        let record = [&b"head"[..], &magic, b"middl", &magic, b"tail!"].concat();
        let out = framed(&record);
        let flag = |part_at: usize| u32::from_le_bytes(out[part_at + 4..part_at + 8].try_into().unwrap());
        assert_eq!(flag(0), (1 << 29) | 4, "first part: 'head'");
        assert_eq!(flag(12), (3 << 29) | 14, "last part: the rest, unaligned magic included");
        assert_eq!(out.len(), 12 + 8 + 16);
        let (path, file) = temp_file(&out);
        let (read, end) = read_record(&file, 0, out.len() as u64).unwrap();
        assert_eq!(read, record);
        assert_eq!(end, out.len() as u64);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn records_made_of_magic_words_round_trip() {
        let magic = MAGIC.to_le_bytes();
        for record in [magic.to_vec(), [magic, magic].concat(), [&magic[..], b"x", &magic].concat(), Vec::new()] {
            let out = framed(&record);
            let (path, file) = temp_file(&out);
            let (read, end) = read_record(&file, 0, out.len() as u64).unwrap();
            assert_eq!(read, record);
            assert_eq!(end, out.len() as u64);
            assert_eq!(record_end(&file, 0, out.len() as u64).unwrap(), end);
            std::fs::remove_file(path).unwrap();
        }
    }

    #[test]
    fn truncation_and_bad_magic_are_reported_with_the_offset() {
        let out = framed(b"0123456789");
        let (path, file) = temp_file(&out[..out.len() - 2]);
        let err = read_record(&file, 0, out.len() as u64 - 2).unwrap_err();
        assert_eq!(err.at, 0);
        assert_eq!(err.message, "part of 10 bytes ends at byte 20, past the end of the file (18 bytes): truncated");
        std::fs::remove_file(path).unwrap();

        let mut bad = out.clone();
        bad[0] = 0;
        let (path, file) = temp_file(&bad);
        let err = record_end(&file, 0, bad.len() as u64).unwrap_err();
        assert_eq!(err.message, "expected the RecordIO magic 0xced7230a, found 0xced72300");
        std::fs::remove_file(path).unwrap();
    }
}
