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

use crate::error::{EvalError, Result};

/// Longest accepted line, newline excluded. The widest legitimate line is a
/// CSV embedding row (4096 dimensions at ~25 characters each is 100 KB);
/// 1 MiB leaves room for that and bounds the buffer a hostile file can grow.
pub const MAX_LINE_BYTES: usize = 1 << 20;

thread_local! {
    static BYTES_EXAMINED: Cell<u64> = const { Cell::new(0) };
}

/// Adds `bytes` to this thread's [`bytes_examined_on_this_thread`]: one
/// increment per line or per field, never per byte.
fn examined(bytes: usize) {
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
        let mut content: &[u8] = &buf;
        let complete = content.last() == Some(&b'\n');
        if complete {
            content = &content[..content.len() - 1];
        }
        if content.last() == Some(&b'\r') {
            content = &content[..content.len() - 1];
        }
        if content.len() > MAX_LINE_BYTES || (!complete && n as u64 == MAX_LINE_BYTES as u64 + 2) {
            return Err(EvalError::parse(path, line_no, format!("line longer than {MAX_LINE_BYTES} bytes: not a text file of this format")));
        }
        let line = std::str::from_utf8(content)
            .map_err(|e| EvalError::parse(path, line_no, format!("not valid UTF-8 text (byte {} of the line)", e.valid_up_to() + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        visit(line_no, line)?;
    }
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
