//! Cluster label files: one integer per line, −1 for noise
//! (docs/spec/formats.md, "Cluster labels").

use std::io::{BufRead, Write};
use std::path::Path;

use crate::error::{EvalError, Result};
use crate::io::text::{for_each_line_in, open_text, LineCtx};

/// Reads a label file; refuses non-integers and an empty file.
pub fn read_labels(path: &Path) -> Result<Vec<i64>> {
    read_labels_from(open_text(path)?, path)
}

/// [`read_labels`] over any reader; `path` names the source in errors.
pub fn read_labels_from(reader: impl BufRead, path: &Path) -> Result<Vec<i64>> {
    let mut labels = Vec::new();
    for_each_line_in(reader, path, |line_no, line| {
        let ctx = LineCtx { path, line: line_no };
        labels.push(ctx.i64_field("label", line)?);
        Ok(())
    })?;
    if labels.is_empty() {
        return Err(EvalError::content(path, "empty file: expected one integer label per line"));
    }
    Ok(labels)
}

/// Writes `labels`, one per line, creating or truncating `path`; a failure is
/// [`EvalError::Io`] naming it.
pub fn write_labels(path: &Path, labels: &[i64]) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| EvalError::io(path, e))?;
    let mut out = std::io::BufWriter::new(file);
    for l in labels {
        writeln!(out, "{l}").map_err(|e| EvalError::io(path, e))?;
    }
    out.flush().map_err(|e| EvalError::io(path, e))
}
