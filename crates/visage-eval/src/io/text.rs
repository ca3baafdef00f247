//! Line-oriented reading shared by every text format of this crate (scores
//! CSV, ERC CSV, label files, IJB metadata, pair lists): one place that turns
//! a bad field into an error naming the file, the 1-based line and what was
//! expected.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::{EvalError, Result};

/// Reads `path` line by line, calling `visit(line_number, line)` for every
/// non-blank line (1-based numbers; `\r\n` endings accepted).
pub fn for_each_line(path: &Path, mut visit: impl FnMut(usize, &str) -> Result<()>) -> Result<()> {
    let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = String::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => {
                EvalError::parse(path, line_no + 1, "not valid UTF-8 text")
            }
            _ => EvalError::io(path, e),
        })?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        let line = buf.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        visit(line_no, line)?;
    }
}

/// Context for parsing fields of one line.
pub struct LineCtx<'a> {
    pub path: &'a Path,
    pub line: usize,
}

impl LineCtx<'_> {
    pub fn error(&self, message: impl Into<String>) -> EvalError {
        EvalError::parse(PathBuf::from(self.path), self.line, message)
    }

    /// A finite-or-infinite number; NaN is refused because it has no place in
    /// a ranking (every threshold comparison with NaN is false).
    pub fn f64_field(&self, column: &str, text: &str) -> Result<f64> {
        let value: f64 = text
            .trim()
            .parse()
            .map_err(|_| self.error(format!("column `{column}`: expected a number, found `{}`", text.trim())))?;
        if value.is_nan() {
            return Err(self.error(format!("column `{column}`: NaN is not a valid value")));
        }
        Ok(value)
    }

    pub fn i64_field(&self, column: &str, text: &str) -> Result<i64> {
        text.trim()
            .parse()
            .map_err(|_| self.error(format!("column `{column}`: expected an integer, found `{}`", text.trim())))
    }

    /// A 0/1 label (`1` = same identity).
    pub fn label_field(&self, column: &str, text: &str) -> Result<bool> {
        match text.trim() {
            "1" => Ok(true),
            "0" => Ok(false),
            other => Err(self.error(format!("column `{column}`: expected 0 or 1, found `{other}`"))),
        }
    }
}

/// Splits a CSV line on commas and checks the number of fields.
pub fn split_fields<'l>(ctx: &LineCtx<'_>, line: &'l str, expected: usize, header: &str) -> Result<Vec<&'l str>> {
    let fields: Vec<&str> = line.split(',').collect();
    if fields.len() != expected {
        return Err(ctx.error(format!(
            "expected {expected} comma-separated fields ({header}), found {}",
            fields.len()
        )));
    }
    Ok(fields)
}
