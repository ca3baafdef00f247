//! Embedding matrices: `.npy` (NumPy format v1/v2/v3, 2-D float32/float64,
//! either byte order, C or Fortran order — docs/spec/formats.md) or CSV
//! (one row per face, comma separated numbers, optional non-numeric header
//! line).
//!
//! Everything is converted to `f64`: distances are then computed in the same
//! precision as NumPy/scikit-learn's float64 path, so clusterings agree with
//! the references on partitions, not only approximately.
//!
//! The `.npy` header is parsed here rather than trusted to a generic reader:
//! its shape is a claim, and a 100-byte file can claim 2⁴⁰ rows. The claimed
//! `rows × columns × item size` (checked arithmetic) must equal the bytes
//! that follow the header before the matrix is allocated, so memory is only
//! ever spent in proportion to the file's real size.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use ndarray::{Array2, ArrayD, Ix2, IxDyn, ShapeBuilder};

use crate::error::{EvalError, Result};
use crate::io::text::{for_each_line_in, open_text, LineCtx};

/// Longest accepted `.npy` header. NumPy pads headers to 64 bytes and
/// writes ~120 for a 2-D float array; NumPy's own loader refuses more than
/// 10 000 bytes by default, so 64 KiB refuses nothing NumPy writes.
pub const NPY_MAX_HEADER_BYTES: usize = 1 << 16;

/// Reads an embedding matrix; the format is chosen by extension (`.npy`, else CSV).
pub fn read_embeddings(path: &Path) -> Result<Array2<f64>> {
    let matrix = if is_npy(path) {
        let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| EvalError::io(path, e))?.len();
        read_npy_matrix(BufReader::with_capacity(1 << 16, file), file_len, path)?
    } else {
        read_csv_matrix(open_text(path)?, path)?
    };
    check_matrix(matrix, path)
}

/// [`read_embeddings`] on bytes already in memory; `name` decides the format
/// the same way (extension `.npy`, else CSV) and names the source in errors.
pub fn parse_embeddings(bytes: &[u8], name: &Path) -> Result<Array2<f64>> {
    let matrix = if is_npy(name) { read_npy_matrix(bytes, bytes.len() as u64, name)? } else { read_csv_matrix(bytes, name)? };
    check_matrix(matrix, name)
}

fn is_npy(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Refuses an embedding matrix that cannot be clustered or scored: no rows,
/// no columns, or a value that is not finite. `path` names the source in
/// errors (a file, or a name for an array held in memory).
pub fn check_matrix(matrix: Array2<f64>, path: &Path) -> Result<Array2<f64>> {
    if matrix.nrows() == 0 || matrix.ncols() == 0 {
        return Err(EvalError::content(path, format!("empty matrix ({}×{}): expected one row per face", matrix.nrows(), matrix.ncols())));
    }
    let bad = matrix.indexed_iter().find(|(_, v)| !v.is_finite());
    if let Some(((row, column), value)) = bad {
        return Err(EvalError::content(path, format!("row {row} (0-based), column {column} holds {value}: embeddings must be finite")));
    }
    Ok(matrix)
}

/// Element type and byte order of a `.npy` array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NpyDtype {
    /// 4 (float32) or 8 (float64).
    pub item_bytes: usize,
    /// `>` in the descr (big-endian); `<` is little-endian.
    pub big_endian: bool,
}

/// What a `.npy` header declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type and byte order (`descr`).
    pub dtype: NpyDtype,
    /// Whether the data is column-major (`fortran_order: True`).
    pub fortran_order: bool,
    /// The declared dimensions, as claimed (not yet checked against the file size).
    pub shape: Vec<u64>,
    /// Where the array data starts (magic, version, length field and header).
    pub data_offset: u64,
}

/// Reads and checks a `.npy` header from the start of `reader`.
pub fn read_npy_header(reader: &mut impl Read, path: &Path) -> Result<NpyHeader> {
    let bad = |message: String| EvalError::content(path, message);
    let mut preamble = [0u8; 8];
    reader.read_exact(&mut preamble).map_err(|_| bad("shorter than a .npy preamble (8 bytes): not a NumPy .npy file".into()))?;
    if &preamble[..6] != b"\x93NUMPY" {
        return Err(bad("does not start with the .npy magic `\\x93NUMPY`: not a NumPy .npy file".into()));
    }
    let (major, minor) = (preamble[6], preamble[7]);
    let (header_len, length_bytes) = match major {
        1 => {
            let mut len = [0u8; 2];
            reader.read_exact(&mut len).map_err(|_| bad("truncated in the header length field".into()))?;
            (u64::from(u16::from_le_bytes(len)), 2)
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            reader.read_exact(&mut len).map_err(|_| bad("truncated in the header length field".into()))?;
            (u64::from(u32::from_le_bytes(len)), 4)
        }
        _ => return Err(bad(format!(".npy format version {major}.{minor}: only versions 1, 2 and 3 exist"))),
    };
    if header_len > NPY_MAX_HEADER_BYTES as u64 {
        return Err(bad(format!("the .npy header declares {header_len} bytes, above the limit of {NPY_MAX_HEADER_BYTES}")));
    }
    let mut header = vec![0u8; header_len as usize];
    reader.read_exact(&mut header).map_err(|_| bad(format!("truncated: the header declares {header_len} bytes and the file ends first")))?;
    // Versions 1 and 2 are latin-1, 3 is UTF-8; every key and value this
    // reader accepts is ASCII, so anything else is refused by the parser.
    let text = String::from_utf8_lossy(&header);
    let dict = parse_header_dict(&text).map_err(|m| bad(format!(".npy header: {m}")))?;
    let data_offset = 8 + length_bytes + header_len;

    let mut descr = None;
    let mut fortran_order = None;
    let mut shape = None;
    for (key, value) in dict {
        match (key.as_str(), value) {
            ("descr", HeaderValue::Str(s)) => descr = Some(s),
            ("descr", _) => return Err(bad(".npy header: `descr` is not a simple type string (structured arrays are not embeddings)".into())),
            ("fortran_order", HeaderValue::Bool(b)) => fortran_order = Some(b),
            ("fortran_order", _) => return Err(bad(".npy header: `fortran_order` must be True or False".into())),
            ("shape", HeaderValue::Tuple(dims)) => shape = Some(dims),
            ("shape", _) => return Err(bad(".npy header: `shape` must be a tuple of integers".into())),
            (other, _) => return Err(bad(format!(".npy header: unknown key `{other}`"))),
        }
    }
    let (Some(descr), Some(fortran_order), Some(shape)) = (descr, fortran_order, shape) else {
        return Err(bad(".npy header: `descr`, `fortran_order` and `shape` are all required".into()));
    };
    let dtype = match descr.as_str() {
        "<f4" => NpyDtype { item_bytes: 4, big_endian: false },
        "<f8" => NpyDtype { item_bytes: 8, big_endian: false },
        ">f4" => NpyDtype { item_bytes: 4, big_endian: true },
        ">f8" => NpyDtype { item_bytes: 8, big_endian: true },
        other => {
            let shown: String = other.chars().take(32).collect();
            return Err(bad(format!("dtype `{shown}`: expected float32 or float64 ('<f4', '<f8'); convert with `array.astype(np.float32)`")));
        }
    };
    Ok(NpyHeader { dtype, fortran_order, shape, data_offset })
}

/// Reads a 2-D float `.npy` array of `file_len` bytes from `reader`.
pub fn read_npy_matrix(reader: impl Read, file_len: u64, path: &Path) -> Result<Array2<f64>> {
    let array = read_npy_array(reader, file_len, path)?;
    if array.ndim() != 2 {
        let dims: Vec<String> = array.shape().iter().map(usize::to_string).collect();
        return Err(EvalError::content(path, format!("shape ({}) is {}-D: expected a 2-D array, one row per face", dims.join(", "), array.ndim())));
    }
    Ok(array.into_dimensionality::<Ix2>().expect("checked 2-D"))
}

/// Reads a float `.npy` file of any rank (e.g. one embedding, 1-D), in C
/// order whatever the file's order; the same checks as [`read_npy_matrix`].
pub fn read_npy_file(path: &Path) -> Result<ArrayD<f64>> {
    let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| EvalError::io(path, e))?.len();
    read_npy_array(BufReader::with_capacity(1 << 16, file), file_len, path)
}

/// Reads a float `.npy` array of any rank from `reader` (`file_len` bytes in
/// all): the declared shape must account for exactly the bytes after the
/// header before any value is allocated.
pub fn read_npy_array(mut reader: impl Read, file_len: u64, path: &Path) -> Result<ArrayD<f64>> {
    let bad = |message: String| EvalError::content(path, message);
    let header = read_npy_header(&mut reader, path)?;
    let shown = || match header.shape.is_empty() {
        true => "1 (0-D)".to_string(),
        false => header.shape.iter().map(u64::to_string).collect::<Vec<_>>().join("×"),
    };
    let item_bytes = header.dtype.item_bytes as u64;
    let data_bytes = file_len.saturating_sub(header.data_offset);
    let declared = header.shape.iter().try_fold(item_bytes, |bytes, &dim| bytes.checked_mul(dim));
    if declared != Some(data_bytes) {
        let declared = declared.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string());
        return Err(bad(format!(
            "the header declares {} values of {item_bytes} bytes ({declared} bytes) but {data_bytes} bytes of data follow: truncated or not this array's header",
            shown()
        )));
    }
    // Backed by bytes now: every dimension and the count fit the file size.
    let shape: Vec<usize> = header.shape.iter().map(|&d| d as usize).collect();
    let count = (data_bytes / item_bytes) as usize;
    let mut values = Vec::with_capacity(count);
    let mut chunk = vec![0u8; 1 << 16];
    let mut left = data_bytes as usize;
    let convert: fn(&[u8], bool) -> f64 = if header.dtype.item_bytes == 4 { f32_at } else { f64_at };
    while left > 0 {
        let take = left.min(chunk.len());
        reader.read_exact(&mut chunk[..take]).map_err(|e| EvalError::io(path, e))?;
        values.extend(chunk[..take].chunks_exact(header.dtype.item_bytes).map(|b| convert(b, header.dtype.big_endian)));
        left -= take;
    }
    let array = ArrayD::from_shape_vec(IxDyn(&shape).set_f(header.fortran_order), values).map_err(|e| bad(e.to_string()))?;
    Ok(if header.fortran_order { array.as_standard_layout().into_owned() } else { array })
}

fn f32_at(bytes: &[u8], big_endian: bool) -> f64 {
    let b: [u8; 4] = bytes.try_into().expect("chunks of 4");
    f64::from(if big_endian { f32::from_be_bytes(b) } else { f32::from_le_bytes(b) })
}

fn f64_at(bytes: &[u8], big_endian: bool) -> f64 {
    let b: [u8; 8] = bytes.try_into().expect("chunks of 8");
    if big_endian {
        f64::from_be_bytes(b)
    } else {
        f64::from_le_bytes(b)
    }
}

#[derive(Debug)]
enum HeaderValue {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

/// Parses the Python dict literal of a `.npy` header: string keys; string,
/// `True`/`False` or flat integer-tuple values. One pass, no recursion (a
/// nested value is refused, not descended into).
fn parse_header_dict(text: &str) -> Result<Vec<(String, HeaderValue)>, String> {
    let mut cursor = Cursor { bytes: text.as_bytes(), at: 0 };
    cursor.expect(b'{')?;
    let mut entries = Vec::new();
    loop {
        cursor.skip_space();
        if cursor.eat(b'}') {
            break;
        }
        let key = cursor.string()?;
        cursor.expect(b':')?;
        cursor.skip_space();
        let value = match cursor.peek() {
            Some(b'\'' | b'"') => HeaderValue::Str(cursor.string()?),
            Some(b'(') => HeaderValue::Tuple(cursor.int_tuple()?),
            Some(b'T' | b'F') => HeaderValue::Bool(cursor.boolean()?),
            Some(other) => return Err(format!("unexpected `{}` at byte {} (value of `{key}`)", other as char, cursor.at)),
            None => return Err("ends inside the dictionary".into()),
        };
        if entries.iter().any(|(k, _): &(String, HeaderValue)| *k == key) {
            return Err(format!("key `{key}` appears twice"));
        }
        entries.push((key, value));
        cursor.skip_space();
        if cursor.eat(b',') {
            continue;
        }
        cursor.expect(b'}')?;
        break;
    }
    cursor.skip_space();
    if cursor.at != cursor.bytes.len() {
        return Err(format!("unexpected text after the dictionary at byte {}", cursor.at));
    }
    Ok(entries)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.skip_space();
        if self.eat(byte) {
            Ok(())
        } else {
            Err(format!("expected `{}` at byte {}", byte as char, self.at))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.skip_space();
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("expected a quoted string at byte {}", self.at)),
        };
        let start = self.at + 1;
        let Some(len) = self.bytes[start..].iter().position(|&b| b == quote) else {
            return Err("unterminated string".into());
        };
        self.at = start + len + 1;
        let text = &self.bytes[start..start + len];
        if !text.iter().all(|b| b.is_ascii_graphic() || *b == b' ') || text.contains(&b'\\') {
            return Err(format!("string at byte {start} is not plain ASCII"));
        }
        Ok(String::from_utf8_lossy(text).into_owned())
    }

    fn boolean(&mut self) -> Result<bool, String> {
        for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.bytes[self.at..].starts_with(word) {
                self.at += word.len();
                return Ok(value);
            }
        }
        Err(format!("expected True or False at byte {}", self.at))
    }

    /// `(`, integers separated by commas (a trailing comma allowed, Python 2's
    /// `L` suffix accepted), `)`.
    fn int_tuple(&mut self) -> Result<Vec<u64>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.skip_space();
            if self.eat(b')') {
                return Ok(dims);
            }
            let start = self.at;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.at += 1;
            }
            if start == self.at {
                return Err(format!("expected a non-negative integer in `shape` at byte {start}"));
            }
            let digits = std::str::from_utf8(&self.bytes[start..self.at]).expect("ASCII digits");
            let dim: u64 = digits.parse().map_err(|_| format!("shape dimension {digits} does not fit 64 bits"))?;
            self.eat(b'L');
            dims.push(dim);
            // A real array has at most 64 dimensions (NumPy's NPY_MAXDIMS).
            if dims.len() > 64 {
                return Err("more than 64 dimensions in `shape`".into());
            }
            self.skip_space();
            if self.eat(b')') {
                return Ok(dims);
            }
            self.expect(b',')?;
        }
    }
}

fn read_csv_matrix(reader: impl BufRead, path: &Path) -> Result<Array2<f64>> {
    let mut values: Vec<f64> = Vec::new();
    let mut cols: Option<usize> = None;
    let mut rows = 0usize;
    let mut first = true;
    for_each_line_in(reader, path, |line_no, line| {
        let ctx = LineCtx { path, line: line_no };
        if first {
            first = false;
            if line.split(',').any(|f| f.trim().parse::<f64>().is_err()) {
                return Ok(()); // a header line
            }
        }
        let before = values.len();
        for (i, f) in line.split(',').enumerate() {
            values.push(ctx.f64_field(&format!("{i}"), f)?);
        }
        let found = values.len() - before;
        match cols {
            None => cols = Some(found),
            Some(c) if c != found => return Err(ctx.error(format!("expected {c} values like the first row, found {found}"))),
            _ => {}
        }
        rows += 1;
        Ok(())
    })?;
    let cols = cols.unwrap_or(0);
    Array2::from_shape_vec((rows, cols), values).map_err(|e| EvalError::content(path, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}", if fortran { "True" } else { "False" });
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn name() -> &'static Path {
        Path::new("emb.npy")
    }

    #[test]
    fn float32_and_float64_in_both_orders_and_byte_orders() {
        let le32: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let m = parse_embeddings(&npy("<f4", false, "(2, 3)", &le32), name()).unwrap();
        assert_eq!(m, ndarray::arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]));
        // Fortran order: the same bytes are the columns.
        let m = parse_embeddings(&npy("<f4", true, "(2, 3)", &le32), name()).unwrap();
        assert_eq!(m, ndarray::arr2(&[[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]]));
        let be64: Vec<u8> = [0.5f64, -2.25].iter().flat_map(|v| v.to_be_bytes()).collect();
        let m = parse_embeddings(&npy(">f8", false, "(1, 2)", &be64), name()).unwrap();
        assert_eq!(m, ndarray::arr2(&[[0.5, -2.25]]));
    }

    #[test]
    fn a_declared_shape_is_checked_against_the_bytes_before_allocating() {
        let err = parse_embeddings(&npy("<f4", false, "(1099511627776, 512)", &[0; 8]), name()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "emb.npy: the header declares 1099511627776×512 values of 4 bytes (2251799813685248 bytes) but 8 bytes of data follow: truncated or not this array's header"
        );
        let err = parse_embeddings(&npy("<f8", false, "(18446744073709551615, 3)", &[]), name()).unwrap_err();
        assert!(err.to_string().contains("(more than 2^64 bytes)"), "{err}");
        let err = parse_embeddings(&npy("<f8", false, "(99999999999999999999, 3)", &[]), name()).unwrap_err();
        assert!(err.to_string().contains("does not fit 64 bits"), "{err}");
    }

    #[test]
    fn wrong_dtypes_and_dimensions_name_the_file() {
        let err = parse_embeddings(&npy("<i8", false, "(1, 1)", &[0; 8]), name()).unwrap_err();
        assert!(err.to_string().starts_with("emb.npy: dtype `<i8`: expected float32 or float64"), "{err}");
        for (shape, dims, bytes) in [("()", "0-D", 4), ("(4,)", "1-D", 16), ("(1, 1, 1)", "3-D", 4)] {
            let err = parse_embeddings(&npy("<f4", false, shape, &vec![0; bytes]), name()).unwrap_err();
            assert!(err.to_string().contains(&format!("is {dims}: expected a 2-D array")), "{shape}: {err}");
        }
        let err = parse_embeddings(b"\x93NUMPY\x01\x00\xff\xff{", name()).unwrap_err();
        assert!(err.to_string().contains("truncated: the header declares 65535 bytes"), "{err}");
        let err = parse_embeddings(b"\x93NUMPY\x02\x00\xff\xff\xff\x7f", name()).unwrap_err();
        assert!(err.to_string().contains("above the limit of 65536"), "{err}");
        let err = parse_embeddings(b"PK\x03\x04", name()).unwrap_err();
        assert!(err.to_string().contains("not a NumPy .npy file"), "{err}");
        let err = parse_embeddings(&npy("<f4", false, "((1, 2), 3)", &[]), name()).unwrap_err();
        assert!(err.to_string().contains("expected a non-negative integer in `shape`"), "{err}");
    }

    #[test]
    fn non_finite_values_are_refused_with_their_row_and_column() {
        let data: Vec<u8> = [1.0f32, 2.0, f32::NAN, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let err = parse_embeddings(&npy("<f4", false, "(2, 2)", &data), name()).unwrap_err();
        assert_eq!(err.to_string(), "emb.npy: row 1 (0-based), column 0 holds NaN: embeddings must be finite");
        let err = parse_embeddings(b"1,2\n3,inf\n", Path::new("emb.csv")).unwrap_err();
        assert_eq!(err.to_string(), "emb.csv:2: column `1`: `inf` is not a finite number");
    }
}
