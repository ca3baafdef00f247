//! insightface verification sets (`lfw.bin`, `cfp_fp.bin`, `agedb_30.bin`, …):
//! a pickle of `(bins, issame_list)` — `2N` encoded images and `N` is-same
//! flags; pair `i` is images `2i` and `2i + 1` (docs/spec/formats.md).

use std::path::Path;
use std::rc::Rc;

use visage_pickle::{parse, Options, Value};

use crate::error::{EvalError, Result};

/// A verification set: encoded images (JPEG/PNG bytes, not decoded here) and pair flags.
#[derive(Debug, Clone)]
pub struct VerificationSet {
    /// The `2N` encoded images in file order (shared with the parsed pickle, not copied).
    pub images: Vec<Rc<Vec<u8>>>,
    /// One flag per pair: whether images `2i` and `2i + 1` show the same person.
    pub issame: Vec<bool>,
}

impl VerificationSet {
    /// Pair `i` = images `(2i, 2i + 1)`.
    pub fn pairs(&self) -> Vec<(usize, usize)> {
        (0..self.issame.len()).map(|i| (2 * i, 2 * i + 1)).collect()
    }
}

/// Reads a `.bin` set: the whole file into memory, then
/// [`parse_verification_bin`]. A file that is not such a pickle is
/// [`EvalError::Content`].
pub fn read_verification_bin(path: &Path) -> Result<VerificationSet> {
    let data = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
    parse_verification_bin(&data, path)
}

/// [`read_verification_bin`] on the file's bytes; `path` names it in errors.
/// The pickle is read with visage-pickle's plain-data options (no imports,
/// bounded memory and depth); this checks its shape.
pub fn parse_verification_bin(data: &[u8], path: &Path) -> Result<VerificationSet> {
    let bad = |message: String| EvalError::content(path, message);
    let value = parse(data, Options::PLAIN_DATA).map_err(|e| bad(format!("not a readable pickle: {e}")))?;
    let items = match value {
        Value::Tuple(items) | Value::List(items) if items.len() == 2 => items,
        other => return Err(bad(format!("expected a 2-tuple (bins, issame_list), found a {}", other.kind()))),
    };
    let mut items = items.into_iter();
    let (bins, flags) = (items.next().unwrap(), items.next().unwrap());
    let Value::List(bins) = bins else { return Err(bad(format!("bins: expected a list of encoded images, found a {}", bins.kind()))) };
    let Value::List(flags) = flags else { return Err(bad(format!("issame_list: expected a list of bools, found a {}", flags.kind()))) };
    let images = bins
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Bytes(b) => Ok(b),
            other => Err(bad(format!("bins[{i}]: expected bytes, found a {}", other.kind()))),
        })
        .collect::<Result<Vec<_>>>()?;
    let issame = flags
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Bool(b) => Ok(b),
            Value::Int(0) => Ok(false),
            Value::Int(1) => Ok(true),
            other => Err(bad(format!("issame_list[{i}]: expected a bool, found a {}", other.kind()))),
        })
        .collect::<Result<Vec<_>>>()?;
    if images.len() != 2 * issame.len() {
        return Err(bad(format!("{} images for {} pairs: expected exactly 2 per pair", images.len(), issame.len())));
    }
    if issame.is_empty() {
        return Err(bad("no pairs".into()));
    }
    Ok(VerificationSet { images, issame })
}
