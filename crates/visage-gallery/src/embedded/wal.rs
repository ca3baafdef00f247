//! The write-ahead log: append-only, checksummed records, fsynced before a
//! write is acknowledged.
//!
//! Record layout (little-endian):
//!
//! ```text
//! magic "VGW1" (4 B) | payload length (u32) | CRC-32 of seq+payload (u32) | seq (u64) | payload (JSON)
//! ```
//!
//! A crash while appending leaves at most the last record incomplete: its
//! header, length or checksum does not hold and no valid record follows it.
//! [`read_log`] stops there and reports the offset, so the store can drop
//! that torn tail (when it opens for writing it copies the cut bytes to
//! `wal.log.cut-OFFSET-CRC` and then truncates the file). A bad
//! record *followed by a valid one* is damage inside the log, not a torn
//! append: that is an error, never skipped, because the records after it
//! were acknowledged.

use std::path::Path;

use super::fs::{FileHandle, FileSystem};
use crate::error::{GalleryError, Result};

/// The first 4 bytes of every record.
pub const MAGIC: [u8; 4] = *b"VGW1";
/// Bytes before the payload: magic, length, CRC-32, seq.
pub const HEADER_LEN: usize = 20;
/// Refuses absurd lengths before allocating (a torn length field can say anything).
pub const MAX_PAYLOAD: usize = 1 << 31;

/// One record as read back.
#[derive(Debug)]
pub struct LogRecord {
    /// The transaction's sequence number, strictly increasing through the log.
    pub seq: u64,
    /// The transaction: a JSON list of changes.
    pub payload: Vec<u8>,
}

/// Everything readable in a log file.
#[derive(Debug)]
pub struct LogContents {
    /// The valid records, in file order.
    pub records: Vec<LogRecord>,
    /// Bytes of whole, valid records.
    pub valid_len: u64,
    /// Bytes after them (a torn append), 0 when the file ends cleanly.
    pub torn_bytes: u64,
}

/// One record's bytes, header and payload, as the module docs lay them out.
pub fn encode(seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER_LEN + payload.len());
    record.extend_from_slice(&MAGIC);
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&checksum(seq, payload).to_le_bytes());
    record.extend_from_slice(&seq.to_le_bytes());
    record.extend_from_slice(payload);
    record
}

fn checksum(seq: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Reads every whole record; see the module docs for torn tails vs damage.
pub fn read_log(fs: &dyn FileSystem, path: &Path) -> Result<LogContents> {
    let bytes = match fs.read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(GalleryError::io(path, e)),
    };
    parse_log(path, &bytes)
}

/// [`read_log`] on bytes already read (`path` only names them in errors).
pub fn parse_log(path: &Path, bytes: &[u8]) -> Result<LogContents> {
    let mut records = Vec::new();
    let mut offset = 0usize;
    let total = bytes.len();
    let mut last_seq = None;
    while offset < total {
        let Some((seq, payload_len)) = valid_record_at(bytes, offset) else {
            let mut budget = SCAN_BUDGET_FACTOR * total as u64 + SCAN_BUDGET_BASE;
            let following = next_valid_record(bytes, offset + 1, &mut budget);
            if budget == 0 {
                return Err(GalleryError::corrupt(
                    path,
                    format!(
                        "the record at byte {offset} is damaged (bad magic, length or CRC-32) and the bytes after it hold too many \
                         record-like headers to tell a torn append from damage; refusing to open (records before byte {offset} are intact)"
                    ),
                ));
            }
            if let Some(next) = following {
                return Err(GalleryError::corrupt(
                    path,
                    format!(
                        "the record at byte {offset} is damaged (bad magic, length or CRC-32) and a valid record follows at byte {next}: \
                         damage inside the log, not a torn append; refusing to open (records before byte {offset} are intact)"
                    ),
                ));
            }
            return Ok(LogContents { records, valid_len: offset as u64, torn_bytes: (total - offset) as u64 });
        };
        if last_seq.is_some_and(|last| seq <= last) {
            return Err(GalleryError::corrupt(
                path,
                format!("record at byte {offset} has seq {seq}, not after the previous {}", last_seq.unwrap_or(0)),
            ));
        }
        last_seq = Some(seq);
        let end = offset + HEADER_LEN + payload_len;
        records.push(LogRecord { seq, payload: bytes[offset + HEADER_LEN..end].to_vec() });
        offset = end;
    }
    Ok(LogContents { records, valid_len: total as u64, torn_bytes: 0 })
}

/// `(seq, payload length)` when a whole record with a matching checksum starts at `offset`.
fn valid_record_at(bytes: &[u8], offset: usize) -> Option<(u64, usize)> {
    let header = bytes.get(offset..offset + HEADER_LEN)?;
    if header[..4] != MAGIC {
        return None;
    }
    let payload_len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
    let stored_crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
    if payload_len > MAX_PAYLOAD {
        return None;
    }
    let payload = bytes.get(offset + HEADER_LEN..offset + HEADER_LEN + payload_len)?;
    (checksum(seq, payload) == stored_crc).then_some((seq, payload_len))
}

/// Checking candidates after a damaged record hashes their payloads; a file
/// crafted with a record-like header every few bytes would make that
/// quadratic. The scan hashes at most `factor × file size + base` bytes and
/// past that refuses to open rather than guess.
const SCAN_BUDGET_FACTOR: u64 = 4;
const SCAN_BUDGET_BASE: u64 = 1 << 20;

/// The first offset at or after `from` where a valid record starts, within
/// `budget` hashed bytes (left at 0 when it ran out).
fn next_valid_record(bytes: &[u8], from: usize, budget: &mut u64) -> Option<usize> {
    let mut offset = from;
    while offset + HEADER_LEN <= bytes.len() {
        let found = bytes[offset..].windows(4).position(|w| w == MAGIC)?;
        offset += found;
        let declared = bytes.get(offset + 4..offset + 8).map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as u64);
        let cost = declared.min(bytes.len() as u64) + HEADER_LEN as u64;
        if cost > *budget {
            *budget = 0;
            return None;
        }
        *budget -= cost;
        if valid_record_at(bytes, offset).is_some() {
            return Some(offset);
        }
        offset += 1;
    }
    None
}

/// Refuses a transaction the reader would not take back: a record longer
/// than [`MAX_PAYLOAD`] would read as a torn tail, losing it (and the length
/// field holds 32 bits). Only an import of a multi-gigabyte export gets
/// near it; it is bad input, to be split.
pub fn check_payload_len(len: usize) -> Result<()> {
    if len > MAX_PAYLOAD {
        return Err(GalleryError::invalid(
            "transaction",
            format!("{len} bytes in one log record; at most {MAX_PAYLOAD} fit (import the export in parts)"),
        ));
    }
    Ok(())
}

/// An open log, appending.
pub struct LogWriter {
    file: Box<dyn FileHandle>,
    len: u64,
    /// A failed append whose bytes could not be cut off yet: appends land
    /// at the file's end, so the next one cuts first (a record after the
    /// leftover half would read back as damage inside the log).
    needs_cut: bool,
}

/// Copies the bytes a writable open is about to cut off the log to
/// `wal.log.cut-OFFSET-CRC` beside it, durably, before the cut. A crash
/// mid-append leaves a few bytes of one record there; but a log damaged
/// from its first record on (a bad disk, a stray write) also reads as one
/// long torn tail, and cutting it without a copy would destroy every
/// record in it. The name is a pure function of the bytes, so a cut
/// repeated after a crash rewrites the same file. Zeros alone (a file
/// extended but never written) are not kept.
fn keep_cut_bytes(fs: &dyn FileSystem, path: &Path, valid_len: u64) -> Result<()> {
    let bytes = fs.read(path).map_err(|e| GalleryError::io(path, e))?;
    let Some(tail) = bytes.get(valid_len as usize..) else { return Ok(()) };
    if tail.iter().all(|&b| b == 0) {
        return Ok(());
    }
    let kept = cut_bytes_path(path, valid_len, tail);
    let io = |e| GalleryError::io(&kept, e);
    let mut file = fs.create(&kept).map_err(io)?;
    file.append(tail).map_err(io)?;
    file.sync_data().map_err(io)?;
    let dir = super::parent_dir(&kept);
    fs.sync_dir(dir).map_err(|e| GalleryError::io(dir, e))
}

/// Where a writable open keeps the bytes it cuts off `log` at `offset`:
/// `wal.log.cut-OFFSET-CRC`, CRC being the CRC-32 of those bytes in hex.
pub fn cut_bytes_path(log: &Path, offset: u64, tail: &[u8]) -> std::path::PathBuf {
    let name = log.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "wal.log".into());
    log.with_file_name(format!("{name}.cut-{offset}-{:08x}", crc32fast::hash(tail)))
}

impl LogWriter {
    /// Opens `path` for appending at `valid_len`, cutting off anything after
    /// it (a torn tail), and makes that cut durable. A log that does not
    /// exist yet is created and its directory entry synced before any
    /// record can be acknowledged in it.
    pub fn open(fs: &dyn FileSystem, path: &Path, valid_len: u64) -> Result<Self> {
        let io = |e| GalleryError::io(path, e);
        let mut file = match fs.open_append(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let file = fs.create(path).map_err(io)?;
                let dir = super::parent_dir(path);
                fs.sync_dir(dir).map_err(|e| GalleryError::io(dir, e))?;
                file
            }
            Err(e) => return Err(io(e)),
        };
        if file.size().map_err(io)? != valid_len {
            keep_cut_bytes(fs, path, valid_len)?;
            file.set_len(valid_len).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        Ok(Self { file, len: valid_len, needs_cut: false })
    }

    /// A writer on a freshly created, empty log file.
    pub fn empty(file: Box<dyn FileHandle>) -> Self {
        Self { file, len: 0, needs_cut: false }
    }

    /// Appends one record and returns once it is on stable storage
    /// (`fdatasync`). On failure the file is cut back to its previous
    /// length, so a later append does not land after half a record.
    pub fn append(&mut self, path: &Path, seq: u64, payload: &[u8]) -> Result<()> {
        check_payload_len(payload.len())?;
        if self.needs_cut {
            self.file.set_len(self.len).map_err(|e| GalleryError::io(path, e))?;
            self.needs_cut = false;
        }
        let record = encode(seq, payload);
        let written = self.file.append(&record).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            self.needs_cut = self.file.set_len(self.len).is_err();
            return Err(GalleryError::io(path, e));
        }
        self.len += record.len() as u64;
        Ok(())
    }

    /// Bytes in the log (valid records only).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the log holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::embedded::fs::RealFs;

    fn read_log(path: &Path) -> Result<LogContents> {
        super::read_log(&RealFs, path)
    }

    fn temp_log(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("visage-wal-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wal.log");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn header_layout_and_crc_are_as_documented() {
        let record = encode(7, b"{}");
        assert_eq!(&record[..4], b"VGW1");
        assert_eq!(u32::from_le_bytes(record[4..8].try_into().unwrap()), 2);
        // CRC-32 (IEEE) of 07 00 00 00 00 00 00 00 7B 7D, computed with Python's zlib.crc32.
        assert_eq!(u32::from_le_bytes(record[8..12].try_into().unwrap()), 0xE329_DEB3);
        assert_eq!(u64::from_le_bytes(record[12..20].try_into().unwrap()), 7);
        assert_eq!(&record[20..], b"{}");
    }

    #[test]
    fn torn_tails_are_dropped_and_mid_log_damage_refused() {
        let mut bytes = encode(1, b"first");
        bytes.extend(encode(2, b"second"));
        let whole = bytes.len();
        let third = encode(3, b"third record");
        // Every proper prefix of the third record is a torn append.
        for cut in 0..third.len() {
            let mut torn = bytes.clone();
            torn.extend_from_slice(&third[..cut]);
            let path = temp_log("torn", &torn);
            let log = read_log(&path).unwrap();
            assert_eq!(log.records.len(), 2, "cut {cut}");
            assert_eq!((log.valid_len, log.torn_bytes), (whole as u64, cut as u64));
        }
        // A whole last record with a flipped payload bit: torn too (nothing follows).
        let mut flipped = bytes.clone();
        flipped.extend_from_slice(&third);
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let log = read_log(&temp_log("flip", &flipped)).unwrap();
        assert_eq!((log.records.len(), log.torn_bytes), (2, third.len() as u64));
        // The same flip in the first record, with records after it: damage.
        let mut damaged = bytes.clone();
        damaged[HEADER_LEN] ^= 1;
        let err = read_log(&temp_log("damage", &damaged)).unwrap_err().to_string();
        assert!(err.contains("wal.log: the record at byte 0 is damaged") && err.contains(&format!("follows at byte {}", HEADER_LEN + 5)), "{err}");
        // A damaged magic in the middle is damage too, not a tail to drop.
        let mut bad_magic = bytes.clone();
        bad_magic[0] = b'X';
        assert!(read_log(&temp_log("magic", &bad_magic)).is_err());
        // Garbage with no valid record in it after the last good one: torn.
        let mut garbage = bytes.clone();
        garbage.extend_from_slice(b"VGW1\xff\xff\xff\x7fnot a record at all, just noise");
        let log = read_log(&temp_log("garbage", &garbage)).unwrap();
        assert_eq!((log.records.len(), log.valid_len), (2, whole as u64));
    }

    #[test]
    fn a_tail_full_of_record_like_headers_is_not_scanned_quadratically() {
        // A damaged first record, then 8 MiB of headers each declaring a
        // 1 MiB payload: checking each of the ~370 000 candidates that fit
        // would hash ~4·10¹¹ bytes (6 s here with CRC-32 at memory speed,
        // four times that for every doubling of the file).
        let mut bytes = encode(1, b"first");
        bytes[HEADER_LEN] ^= 1;
        let header: Vec<u8> = [&MAGIC[..], &(1u32 << 20).to_le_bytes(), &[0; 12]].concat();
        while bytes.len() < 8 << 20 {
            bytes.extend_from_slice(&header);
        }
        let err = parse_log(Path::new("wal.log"), &bytes).unwrap_err().to_string();
        assert!(err.contains("too many record-like headers"), "{err}");
        // The work, not the time: the search for the next valid record stops
        // once it has hashed its budget, linear in the file's size, instead
        // of the ~4·10¹¹ bytes the candidates would cost.
        let allowed = SCAN_BUDGET_FACTOR * bytes.len() as u64 + SCAN_BUDGET_BASE;
        let mut budget = allowed;
        assert_eq!(next_valid_record(&bytes, 1, &mut budget), None);
        assert_eq!(budget, 0, "the scan ran out of its budget of {allowed} hashed bytes instead of hashing every candidate");
        // A plain torn tail after valid records still reads (the budget is per file size).
        let mut torn = encode(1, b"one");
        torn.extend_from_slice(&encode(2, &[b'x'; 4096])[..3000]);
        assert_eq!(parse_log(Path::new("wal.log"), &torn).unwrap().records.len(), 1);
    }

    #[test]
    fn the_writer_refuses_what_the_reader_would_drop() {
        assert!(check_payload_len(MAX_PAYLOAD).is_ok());
        let err = check_payload_len(MAX_PAYLOAD + 1).unwrap_err();
        assert!(err.is_bad_input() && err.to_string().starts_with("transaction: 2147483649 bytes in one log record"), "{err}");
        // The reader's side of the same bound: a header declaring MAX_PAYLOAD + 1 is never a record.
        let mut header = encode(1, b"x");
        header[4..8].copy_from_slice(&(MAX_PAYLOAD as u32 + 1).to_le_bytes());
        assert_eq!(valid_record_at(&header, 0), None);
    }

    #[test]
    fn writer_cuts_the_torn_tail_and_appends_after_it() {
        let mut bytes = encode(1, b"one");
        let valid = bytes.len() as u64;
        bytes.extend_from_slice(&encode(2, b"two")[..9]);
        let path = temp_log("writer", &bytes);
        let mut writer = LogWriter::open(&RealFs, &path, valid).unwrap();
        writer.append(&path, 2, b"two again").unwrap();
        drop(writer);
        let log = read_log(&path).unwrap();
        assert_eq!(log.torn_bytes, 0);
        assert_eq!(
            log.records.iter().map(|r| (r.seq, r.payload.clone())).collect::<Vec<_>>(),
            vec![(1, b"one".to_vec()), (2, b"two again".to_vec())]
        );
    }

    #[test]
    fn the_writer_keeps_what_it_cuts_beside_the_log() {
        // A log damaged from its first record on reads as one torn tail;
        // opening it for writing must not destroy those bytes.
        let damaged: Vec<u8> = encode(1, b"first").into_iter().chain(encode(2, b"second")).map(|b| b ^ 0x5a).collect();
        let path = temp_log("keep-cut", &damaged);
        assert_eq!(parse_log(&path, &damaged).unwrap().valid_len, 0);
        let writer = LogWriter::open(&RealFs, &path, 0).unwrap();
        drop(writer);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        let kept = cut_bytes_path(&path, 0, &damaged);
        assert_eq!(std::fs::read(&kept).unwrap(), damaged, "the cut bytes are kept whole at {}", kept.display());
        // Zeros of a file extended but never written are not worth a copy.
        let zeros = temp_log("keep-cut-zeros", &[0u8; 64]);
        drop(LogWriter::open(&RealFs, &zeros, 0).unwrap());
        assert!(!cut_bytes_path(&zeros, 0, &[0u8; 64]).exists());
    }
}
