//! Pair lists for verification: one pair per line, `index_a index_b is_same`
//! (0-based rows of the embedding matrix; spaces, tabs or commas separate).

use std::io::BufRead;
use std::path::Path;

use crate::error::{EvalError, Result};
use crate::io::text::{for_each_line_in, open_text, LineCtx};

/// Row pairs and their is-same flags.
pub type PairList = (Vec<(usize, usize)>, Vec<bool>);

/// Reads a pair list; refuses lines without exactly 3 fields, negative or
/// non-integer indices, flags other than 0/1 and an empty file. Indices are
/// not checked against an embedding matrix here.
pub fn read_pair_list(path: &Path) -> Result<PairList> {
    read_pair_list_from(open_text(path)?, path)
}

/// [`read_pair_list`] over any reader; `path` names the source in errors.
pub fn read_pair_list_from(reader: impl BufRead, path: &Path) -> Result<PairList> {
    let (mut pairs, mut issame) = (Vec::new(), Vec::new());
    for_each_line_in(reader, path, |line_no, line| {
        let ctx = LineCtx { path, line: line_no };
        let fields: Vec<&str> = line.split(|c: char| c == ',' || c.is_whitespace()).filter(|f| !f.is_empty()).collect();
        if fields.len() != 3 {
            return Err(ctx.error(format!("expected `index_a index_b is_same`, found {} fields", fields.len())));
        }
        let index = |name: &str, f: &str| -> Result<usize> {
            let v = ctx.i64_field(name, f)?;
            usize::try_from(v).map_err(|_| ctx.error(format!("{name}: expected a row index ≥ 0, found {v}")))
        };
        pairs.push((index("index_a", fields[0])?, index("index_b", fields[1])?));
        issame.push(ctx.label_field("is_same", fields[2])?);
        Ok(())
    })?;
    if pairs.is_empty() {
        return Err(EvalError::content(path, "empty file: expected lines `index_a index_b is_same`"));
    }
    Ok((pairs, issame))
}
