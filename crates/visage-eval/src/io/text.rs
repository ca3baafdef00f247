//! Line-oriented reading shared by every text format of this crate (scores
//! CSV, ERC CSV, label files, IJB metadata, pair lists, CSV embeddings): one
//! place that turns a bad field into an error naming the file, the 1-based
//! line and what was expected.
//!
//! Lines are read with a length cap so a file without newlines (a binary
//! file passed by mistake, or one built to exhaust memory) is refused after
//! [`MAX_LINE_BYTES`] instead of being buffered whole; every reader is one
//! pass over the bytes, which tests check by counting the bytes examined
//! ([`bytes_examined_on_this_thread`]) rather than by timing a read.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{EvalError, Result};

/// Longest accepted line, newline excluded. The widest legitimate line is a
/// CSV embedding row (4096 dimensions at ~25 characters each is 100 KB);
/// 1 MiB leaves room for that and bounds the buffer a hostile file can grow.
pub const MAX_LINE_BYTES: usize = 1 << 20;

thread_local! {
    static BYTES_EXAMINED: Cell<u64> = const { Cell::new(0) };
}

/// Adds `bytes` to this thread's [`bytes_examined_on_this_thread`]: one
/// increment per line or per field (or per chunk of them), never per byte.
pub(crate) fn examined(bytes: usize) {
    BYTES_EXAMINED.with(|count| count.set(count.get() + bytes as u64));
}

/// The work this thread's text readers have done so far, in bytes: every
/// byte a line scan ([`for_each_line_in`]) took from its input, newlines
/// included (of a line that is too long, at most [`MAX_LINE_BYTES`] + 2),
/// plus the bytes of every field parsed by [`LineCtx`]'s `*_field` methods.
///
/// For tests, which bound it by the input's size instead of timing a read:
/// a reader that makes one pass examines each byte at most twice (once in
/// its line, once in its field); one that re-read the input per line or
/// re-parsed a row per field would count a multiple of the input that
/// grows with its length.
pub fn bytes_examined_on_this_thread() -> u64 {
    BYTES_EXAMINED.with(Cell::get)
}

/// Reads `path` line by line, calling `visit(line_number, line)` for every
/// non-blank line (1-based numbers; `\r\n` endings accepted).
pub fn for_each_line(path: &Path, visit: impl FnMut(usize, &str) -> Result<()>) -> Result<()> {
    for_each_line_in(open_text(path)?, path, visit)
}

/// Opens a text file for [`for_each_line_in`] (the `read_*` functions are
/// this plus their `read_*_from` twin, which takes any reader).
pub fn open_text(path: &Path) -> Result<BufReader<File>> {
    let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
    Ok(BufReader::with_capacity(1 << 16, file))
}

/// [`for_each_line`] over any reader; `path` names the source in errors
/// (also the entry point for in-memory bytes, e.g. a fuzz target).
pub fn for_each_line_in(mut reader: impl BufRead, path: &Path, mut visit: impl FnMut(usize, &str) -> Result<()>) -> Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        // One byte over the cap tells "exactly at the cap" from "longer".
        let n = (&mut reader).take(MAX_LINE_BYTES as u64 + 2).read_until(b'\n', &mut buf).map_err(|e| EvalError::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        // `read_until` stops at the newline: it examined the `n` bytes it took.
        examined(n);
        line_no += 1;
        if let Some(line) = line_text(&buf, path, line_no)? {
            visit(line_no, line)?;
        }
    }
}

/// Length of the first line of `bytes`, its newline included: the bytes a
/// line scan takes, at most [`MAX_LINE_BYTES`] + 2 (one over the cap tells
/// "exactly at the cap" from "longer", one more for a `\r`), exactly as
/// [`for_each_line_in`] takes them from a reader.
pub(crate) fn line_length(bytes: &[u8]) -> usize {
    let window = &bytes[..bytes.len().min(MAX_LINE_BYTES + 2)];
    window.iter().position(|&b| b == b'\n').map_or(window.len(), |i| i + 1)
}

/// The text of one line as a line scan took it (`raw`: at most
/// [`MAX_LINE_BYTES`] + 2 bytes, ending at its newline if it has one), or
/// `None` for a blank line: the one place that refuses an over-long line or
/// bytes that are not UTF-8, naming `path` and line `line_no`.
pub(crate) fn line_text<'b>(raw: &'b [u8], path: &Path, line_no: usize) -> Result<Option<&'b str>> {
    let mut content = raw;
    let complete = content.last() == Some(&b'\n');
    if complete {
        content = &content[..content.len() - 1];
    }
    if content.last() == Some(&b'\r') {
        content = &content[..content.len() - 1];
    }
    if content.len() > MAX_LINE_BYTES || (!complete && raw.len() == MAX_LINE_BYTES + 2) {
        return Err(EvalError::parse(path, line_no, format!("line longer than {MAX_LINE_BYTES} bytes: not a text file of this format")));
    }
    let line = std::str::from_utf8(content)
        .map_err(|e| EvalError::parse(path, line_no, format!("not valid UTF-8 text (byte {} of the line)", e.valid_up_to() + 1)))?;
    Ok(if line.trim().is_empty() { None } else { Some(line) })
}

/// How [`for_each_chunk_in`] cuts its input: the bytes read per round and
/// the smallest chunk handed to one thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkSizes {
    /// Bytes read from the source before a round of parallel parsing (the
    /// text held in memory at once, plus at most one line).
    pub block: usize,
    /// Below this a block is not split further: a thread's share must pay
    /// for its hand-over, and small inputs stay on the calling thread.
    pub min_chunk: usize,
}

impl ChunkSizes {
    /// 32 MiB per round in chunks of at least 4 MiB: 8 chunks a round keep
    /// two to eight threads busy, and any input under 8 MiB (every test
    /// file, every hostile case) is one chunk parsed on the calling thread.
    pub(crate) const DEFAULT: ChunkSizes = ChunkSizes { block: 32 << 20, min_chunk: 4 << 20 };
}

/// One chunk's parse: its value and how many lines (blank ones included) it
/// held, or an error whose line number counts from the chunk's first line.
pub(crate) type ChunkParse<T> = Result<(T, usize)>;

/// Reads `reader` in blocks of whole lines and parses them on rayon's
/// threads: the first `head_lines` non-blank lines go to `visit_head` in
/// order on this thread (a header); every later run of lines is split at
/// line starts into chunks, `parse_chunk(chunk)` parses each (a chunk starts
/// at a line start and ends after a newline, or at the end of the input),
/// and `merge` receives the values in input order. The first error in input
/// order is returned, with its line number counted from the top of the file.
///
/// Memory: one block plus at most one line, plus the chunks' values, however
/// long the input. Work, in [`bytes_examined_on_this_thread`] of the calling
/// thread (the chunks' counts are moved to it from the threads that parsed
/// them): the bytes `parse_chunk` examines, plus at most
/// [`MAX_LINE_BYTES`] + 2 bytes per cut searched for a line end.
pub(crate) fn for_each_chunk_in<T: Send>(
    mut reader: impl Read,
    path: &Path,
    sizes: ChunkSizes,
    mut head_lines: usize,
    mut visit_head: impl FnMut(usize, &str) -> Result<()>,
    parse_chunk: impl Fn(&[u8]) -> ChunkParse<T> + Sync,
    mut merge: impl FnMut(T),
) -> Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    // lines before `buf`'s first byte
    let mut line_no = 0usize;
    let mut eof = false;
    loop {
        // Fill to a block; then, unless the input ended, cut after the last
        // newline. A tail without a newline shorter than the longest line
        // may be a line cut short: read more. One as long holds a line the
        // parser refuses, so the block is parsed up to its end.
        let end = loop {
            if buf.len() < sizes.block && !eof {
                let want = (sizes.block - buf.len()) as u64;
                let got = (&mut reader).take(want).read_to_end(&mut buf).map_err(|e| EvalError::io(path, e))?;
                eof = (got as u64) < want;
            }
            if eof {
                break buf.len();
            }
            let window = buf.len().saturating_sub(MAX_LINE_BYTES + 2);
            match buf[window..].iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    examined(buf.len() - window - i);
                    break window + i + 1;
                }
                None if buf.len() >= MAX_LINE_BYTES + 2 => {
                    examined(buf.len() - window);
                    break buf.len();
                }
                None => {
                    examined(buf.len());
                    // enough to find the line's end or to refuse it
                    let want = sizes.block.max(MAX_LINE_BYTES + 2 - buf.len()) as u64;
                    let got = (&mut reader).take(want).read_to_end(&mut buf).map_err(|e| EvalError::io(path, e))?;
                    eof = (got as u64) < want;
                }
            }
        };
        if end == 0 {
            return Ok(());
        }
        let mut start = 0;
        while head_lines > 0 && start < end {
            let n = line_length(&buf[start..end]);
            examined(n);
            line_no += 1;
            if let Some(line) = line_text(&buf[start..start + n], path, line_no)? {
                visit_head(line_no, line)?;
                head_lines -= 1;
            }
            start += n;
        }
        let cuts = line_cuts(&buf[start..end], sizes.min_chunk);
        let chunks: Vec<&[u8]> = cuts.windows(2).map(|w| &buf[start + w[0]..start + w[1]]).collect();
        let parsed: Vec<(ChunkParse<T>, u64)> = if chunks.len() == 1 {
            vec![moved_examined(|| parse_chunk(chunks[0]))]
        } else {
            chunks.par_iter().map(|chunk| moved_examined(|| parse_chunk(chunk))).collect()
        };
        examined(parsed.iter().map(|(_, bytes)| *bytes as usize).sum());
        for (result, _) in parsed {
            match result {
                Ok((value, lines)) => {
                    merge(value);
                    line_no += lines;
                }
                Err(mut error) => {
                    if let EvalError::Parse { line, .. } = &mut error {
                        *line += line_no;
                    }
                    return Err(error);
                }
            }
        }
        buf.drain(..end);
    }
}

/// Offsets that cut `bytes` (whole lines) into chunks of about
/// `min_chunk` bytes or more, each cut just after a newline: `[0, …, len]`.
/// A cut is searched for at most [`MAX_LINE_BYTES`] + 2 bytes past its
/// nominal place; where no newline is that close, the line there is too
/// long for any parser and the cut is dropped.
fn line_cuts(bytes: &[u8], min_chunk: usize) -> Vec<usize> {
    let parts = (bytes.len() / min_chunk.max(1)).clamp(1, 4 * rayon::current_num_threads().max(1));
    let mut cuts = vec![0];
    for part in 1..parts {
        let nominal = bytes.len() / parts * part;
        if nominal <= *cuts.last().unwrap_or(&0) {
            continue;
        }
        let n = line_length(&bytes[nominal..]);
        examined(n);
        if bytes[nominal + n - 1] == b'\n' && nominal + n < bytes.len() {
            cuts.push(nominal + n);
        }
    }
    cuts.push(bytes.len());
    cuts
}

/// Runs `work` and takes the bytes it examined off this thread's count,
/// returning them with its result, so a pool thread's work can be counted
/// on the thread that asked for it.
fn moved_examined<R>(work: impl FnOnce() -> R) -> (R, u64) {
    let before = bytes_examined_on_this_thread();
    let result = work();
    let after = bytes_examined_on_this_thread();
    BYTES_EXAMINED.with(|count| count.set(before));
    (result, after - before)
}

/// Context for parsing fields of one line.
pub struct LineCtx<'a> {
    /// The file being read.
    pub path: &'a Path,
    /// 1-based number of the line.
    pub line: usize,
}

impl LineCtx<'_> {
    /// [`EvalError::Parse`] at this file and line.
    pub fn error(&self, message: impl Into<String>) -> EvalError {
        EvalError::parse(PathBuf::from(self.path), self.line, message)
    }

    /// A finite number. NaN has no place in a ranking (every threshold
    /// comparison with it is false) and ±infinity collides with the ROC's
    /// own "above every score" threshold; both (and overflowing literals
    /// such as `1e999`) are refused with the column named.
    pub fn f64_field(&self, column: &str, text: &str) -> Result<f64> {
        examined(text.len());
        let text = text.trim();
        let value: f64 = text.parse().map_err(|_| self.error(format!("column `{column}`: expected a number, found `{}`", shorten(text))))?;
        if value.is_nan() {
            return Err(self.error(format!("column `{column}`: NaN is not a valid value")));
        }
        if value.is_infinite() {
            return Err(self.error(format!("column `{column}`: `{}` is not a finite number", shorten(text))));
        }
        Ok(value)
    }

    /// An integer (surrounding spaces ignored), the column named on error.
    pub fn i64_field(&self, column: &str, text: &str) -> Result<i64> {
        examined(text.len());
        text.trim().parse().map_err(|_| self.error(format!("column `{column}`: expected an integer, found `{}`", shorten(text.trim()))))
    }

    /// A 0/1 label (`1` = same identity).
    pub fn label_field(&self, column: &str, text: &str) -> Result<bool> {
        examined(text.len());
        match text.trim() {
            "1" => Ok(true),
            "0" => Ok(false),
            other => Err(self.error(format!("column `{column}`: expected 0 or 1, found `{}`", shorten(other)))),
        }
    }
}

/// Splits a CSV line on commas and checks the number of fields.
pub fn split_fields<'l>(ctx: &LineCtx<'_>, line: &'l str, expected: usize, header: &str) -> Result<Vec<&'l str>> {
    let fields: Vec<&str> = line.split(',').collect();
    if fields.len() != expected {
        return Err(ctx.error(format!("expected {expected} comma-separated fields ({header}), found {}", fields.len())));
    }
    Ok(fields)
}

/// At most 64 characters of a field for an error message: a field can be a
/// megabyte long, and quoting it whole would make the message the problem.
pub(crate) fn shorten(text: &str) -> std::borrow::Cow<'_, str> {
    const KEEP: usize = 64;
    match text.char_indices().nth(KEEP) {
        None => text.into(),
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()).into(),
    }
}

/// Splits one RFC 4180 line (no line breaks inside fields): commas inside
/// double quotes stay in the field, `""` inside quotes is one quote.
pub fn split_csv_line(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted, mut chars) = (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}
