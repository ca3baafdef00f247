//! The snapshot: the whole gallery state as of one log sequence number,
//! written atomically (temporary file, fsync, rename, fsync of the
//! directory), so a reader sees the old snapshot or the new one, never a mix.
//!
//! Layout: JSON lines. The first line is the header (format, `last_seq`,
//! `next_id`, config); then one identity per line; the last line is the
//! trailer with the identity count and the CRC-32 of every byte before it.
//! A snapshot is never repaired: a count or checksum that does not hold is
//! an error naming the file.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fs::{FileHandle, FileSystem};
use super::IdempotencyRecord;
use crate::config::GalleryConfig;
use crate::error::{GalleryError, Result};
use crate::json::from_json;
use crate::model::{Identity, IdentityId};

/// The header's format marker; a snapshot with another is refused as `Corrupt`.
pub const SNAPSHOT_FORMAT: &str = "visage-gallery-snapshot/1";

/// The snapshot's first line.
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// Always [`SNAPSHOT_FORMAT`].
    pub format: String,
    /// Every log record up to and including this sequence number is in the snapshot.
    pub last_seq: u64,
    /// The id the next new identity gets (ids are never reused, so this can
    /// exceed every id in the snapshot).
    pub next_id: IdentityId,
    /// The gallery's settings as of `last_seq` (the threshold may differ
    /// from `gallery.json`'s, which records the creation config).
    pub config: GalleryConfig,
    /// The idempotency keys still remembered, oldest first (absent in snapshots written before keys existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idempotency: Vec<IdempotencyRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Trailer {
    identities: usize,
    crc32: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct TrailerLine {
    end: Trailer,
}

/// Writes `path` atomically; returns its size in bytes.
pub fn write_snapshot<'a>(fs: &dyn FileSystem, path: &Path, header: &SnapshotHeader, identities: impl Iterator<Item = &'a Identity>) -> Result<u64> {
    let temp = path.with_extension("tmp");
    let io = |e| GalleryError::io(&temp, e);
    let file = HandleWriter(fs.create(&temp).map_err(io)?);
    let mut out = CrcWriter { inner: std::io::BufWriter::with_capacity(1 << 20, file), hasher: crc32fast::Hasher::new(), bytes: 0 };
    let json = |e: serde_json::Error| GalleryError::io(&temp, e.into());
    serde_json::to_writer(&mut out, header).map_err(json)?;
    out.write_all(b"\n").map_err(io)?;
    let mut count = 0;
    for identity in identities {
        serde_json::to_writer(&mut out, identity).map_err(json)?;
        out.write_all(b"\n").map_err(io)?;
        count += 1;
    }
    let trailer = TrailerLine { end: Trailer { identities: count, crc32: out.hasher.clone().finalize() } };
    let mut inner = out.inner;
    let mut size = out.bytes;
    let trailer_line = serde_json::to_string(&trailer).expect("serialisable") + "\n";
    inner.write_all(trailer_line.as_bytes()).map_err(io)?;
    size += trailer_line.len() as u64;
    let mut file = inner.into_inner().map_err(|e| GalleryError::io(&temp, e.into_error()))?;
    file.0.sync_data().map_err(io)?;
    drop(file);
    super::durable_rename(fs, &temp, path)?;
    Ok(size)
}

/// Reads a snapshot, checking its trailer. `None` when there is none yet.
pub fn read_snapshot(fs: &dyn FileSystem, path: &Path) -> Result<Option<(SnapshotHeader, Vec<Identity>, u64)>> {
    let file = match fs.open_read(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(GalleryError::io(path, e)),
    };
    parse_snapshot(path, file).map(Some)
}

/// Reads a snapshot from `source`, checking its trailer (`path` only names it in errors).
pub fn parse_snapshot(path: &Path, source: impl std::io::Read) -> Result<(SnapshotHeader, Vec<Identity>, u64)> {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, source);
    let mut hasher = crc32fast::Hasher::new();
    let mut line = String::new();
    let mut line_no = 0;
    let mut size = 0u64;
    // The next line (with its newline), or an error for a file that ends before its trailer.
    let mut next_line = |line: &mut String, line_no: &mut usize| -> Result<()> {
        line.clear();
        let read = reader.read_line(line).map_err(|e| GalleryError::io(path, e))?;
        if read == 0 {
            return Err(GalleryError::corrupt(path, format!("ends after line {line_no} without its trailer (a truncated snapshot)")));
        }
        size += read as u64;
        *line_no += 1;
        Ok(())
    };
    next_line(&mut line, &mut line_no)?;
    let header: SnapshotHeader = from_json(line.as_bytes()).map_err(|e| GalleryError::corrupt(path, format!("line 1 (header): {e}")))?;
    if header.format != SNAPSHOT_FORMAT {
        return Err(GalleryError::corrupt(path, format!("format {:?}, expected {SNAPSHOT_FORMAT:?}", header.format)));
    }
    hasher.update(line.as_bytes());
    let mut identities = Vec::new();
    loop {
        next_line(&mut line, &mut line_no)?;
        if line.starts_with("{\"end\":") {
            let trailer: TrailerLine =
                serde_json::from_str(&line).map_err(|e| GalleryError::corrupt(path, format!("line {line_no} (trailer): {e}")))?;
            let crc = hasher.finalize();
            if trailer.end.crc32 != crc || trailer.end.identities != identities.len() {
                return Err(GalleryError::corrupt(
                    path,
                    format!(
                        "trailer says {} identities with CRC-32 {:08x}, the file has {} with {crc:08x}",
                        trailer.end.identities,
                        trailer.end.crc32,
                        identities.len()
                    ),
                ));
            }
            return Ok((header, identities, size));
        }
        let identity: Identity = from_json(line.as_bytes()).map_err(|e| GalleryError::corrupt(path, format!("line {line_no}: {e}")))?;
        identities.push(identity);
        hasher.update(line.as_bytes());
    }
}

/// Counts and checksums what passes through.
struct CrcWriter<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A [`FileHandle`] as a `Write`r.
struct HandleWriter(Box<dyn FileHandle>);

impl Write for HandleWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
