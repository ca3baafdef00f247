//! Reader of the ERC input: a scores CSV with quality columns,
//! header `score,label,<q>_1,<q>_2[,<r>_1,<r>_2 …]` — each quality measure
//! gives one column per face of the pair.

use std::io::BufRead;
use std::path::Path;

use crate::error::{EvalError, Result};
use crate::io::text::{for_each_line_in, open_text, shorten, split_fields, LineCtx};

/// Pairs with several per-face quality measures.
#[derive(Debug, Clone, Default)]
pub struct QualityPairs {
    /// Comparison score of each pair (higher = more alike).
    pub scores: Vec<f64>,
    /// Whether each pair is genuine (label 1).
    pub is_same: Vec<bool>,
    /// `(name, pair quality = min of the two faces)` per measure.
    pub pair_quality: Vec<(String, Vec<f64>)>,
}

/// Reads an ERC CSV; refuses a header that is not `score,label` followed by
/// `<name>_1,<name>_2` pairs, non-finite numbers, labels other than 0/1, an
/// empty file and a file with only one class.
pub fn read_erc_csv(path: &Path) -> Result<QualityPairs> {
    read_erc_csv_from(open_text(path)?, path)
}

/// [`read_erc_csv`] over any reader; `path` names the source in errors.
pub fn read_erc_csv_from(reader: impl BufRead, path: &Path) -> Result<QualityPairs> {
    let mut out = QualityPairs::default();
    let mut header: Option<String> = None;
    let mut columns = 0;
    for_each_line_in(reader, path, |line_no, line| {
        let ctx = LineCtx { path, line: line_no };
        let Some(head) = &header else {
            let names: Vec<&str> = line.split(',').map(str::trim).collect();
            let expected = "expected the header `score,label,<quality>_1,<quality>_2,…`";
            if names.len() < 4 || names[0] != "score" || names[1] != "label" || !names.len().is_multiple_of(2) {
                return Err(ctx.error(format!("{expected}, found `{}`", shorten(line))));
            }
            for pair in names[2..].chunks(2) {
                match (pair[0].strip_suffix("_1"), pair[1].strip_suffix("_2")) {
                    (Some(a), Some(b)) if a == b && !a.is_empty() => out.pair_quality.push((a.to_string(), Vec::new())),
                    _ => return Err(ctx.error(format!("{expected}: `{}`,`{}` is not a `<name>_1,<name>_2` pair", pair[0], pair[1]))),
                }
            }
            columns = names.len();
            header = Some(line.to_string());
            return Ok(());
        };
        let fields = split_fields(&ctx, line, columns, head)?;
        out.scores.push(ctx.f64_field("score", fields[0])?);
        out.is_same.push(ctx.label_field("label", fields[1])?);
        for (m, (name, values)) in out.pair_quality.iter_mut().enumerate() {
            let a = ctx.f64_field(&format!("{name}_1"), fields[2 + 2 * m])?;
            let b = ctx.f64_field(&format!("{name}_2"), fields[3 + 2 * m])?;
            values.push(a.min(b));
        }
        Ok(())
    })?;
    if header.is_none() {
        return Err(EvalError::content(path, "empty file: expected the header `score,label,<quality>_1,<quality>_2,…` and rows"));
    }
    let genuine = out.is_same.iter().filter(|&&s| s).count();
    if genuine == 0 || genuine == out.is_same.len() {
        return Err(EvalError::content(path, "an ERC needs both genuine (label 1) and impostor (label 0) pairs"));
    }
    Ok(out)
}
