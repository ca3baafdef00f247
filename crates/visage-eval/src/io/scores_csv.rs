//! Reader of the scores CSV (docs/spec/formats.md, "Scores CSV"):
//! header `score,label`, one comparison per line, label 1 = same identity.
//!
//! Streaming: the file is read line by line and only the two score vectors
//! are kept (8 bytes per pair), so 10⁸ pairs need ~0.8 GB.

use std::io::BufRead;
use std::path::Path;

use crate::error::{EvalError, Result};
use crate::io::text::{for_each_line_in, open_text, shorten, split_fields, LineCtx};
use crate::roc::LabelledScores;

/// The header line a scores CSV must start with.
pub const SCORES_HEADER: &str = "score,label";

/// Reads a scores CSV; refuses a wrong header, non-numeric or NaN scores,
/// labels other than 0/1, an empty file and a file with only one class.
pub fn read_scores_csv(path: &Path) -> Result<LabelledScores> {
    read_scores_csv_from(open_text(path)?, path)
}

/// [`read_scores_csv`] over any reader; `path` names the source in errors.
pub fn read_scores_csv_from(reader: impl BufRead, path: &Path) -> Result<LabelledScores> {
    let mut scores = LabelledScores::default();
    let mut saw_header = false;
    for_each_line_in(reader, path, |line_no, line| {
        let ctx = LineCtx { path, line: line_no };
        if !saw_header {
            let header: Vec<&str> = line.split(',').map(str::trim).collect();
            if header != ["score", "label"] {
                return Err(ctx.error(format!("expected the header `{SCORES_HEADER}`, found `{}`", shorten(line))));
            }
            saw_header = true;
            return Ok(());
        }
        let fields = split_fields(&ctx, line, 2, SCORES_HEADER)?;
        let score = ctx.f64_field("score", fields[0])?;
        if ctx.label_field("label", fields[1])? {
            scores.genuine.push(score);
        } else {
            scores.impostor.push(score);
        }
        Ok(())
    })?;
    if !saw_header {
        return Err(EvalError::content(path, format!("empty file: expected the header `{SCORES_HEADER}` and rows")));
    }
    scores.check_both_classes().map_err(|message| EvalError::content(path, message))?;
    Ok(scores)
}
