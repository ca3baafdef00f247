//! Embedding matrices: `.npy` (NumPy format v1/v2, 2-D float32/float64,
//! C order — shared/spec/formats.md) or CSV (one row per face, comma
//! separated numbers, optional non-numeric header line).
//!
//! Everything is converted to `f64`: distances are then computed in the same
//! precision as NumPy/scikit-learn's float64 path, so clusterings agree with
//! the references on partitions, not only approximately.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use ndarray::Array2;
use ndarray_npy::ReadNpyExt;

use crate::error::{EvalError, Result};
use crate::io::text::{for_each_line, LineCtx};

/// Reads an embedding matrix; the format is chosen by extension (`.npy`, else CSV).
pub fn read_embeddings(path: &Path) -> Result<Array2<f64>> {
    let matrix = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        read_npy(path)?
    } else {
        read_csv_matrix(path)?
    };
    if matrix.nrows() == 0 || matrix.ncols() == 0 {
        return Err(EvalError::content(path, format!("empty matrix ({}×{}): expected one row per face", matrix.nrows(), matrix.ncols())));
    }
    if let Some((row, _)) = matrix.rows().into_iter().enumerate().find(|(_, r)| r.iter().any(|v| !v.is_finite())) {
        return Err(EvalError::content(path, format!("row {row} (0-based) holds NaN or infinity")));
    }
    Ok(matrix)
}

fn read_npy(path: &Path) -> Result<Array2<f64>> {
    let open = || File::open(path).map(BufReader::new).map_err(|e| EvalError::io(path, e));
    match Array2::<f64>::read_npy(open()?) {
        Ok(m) => Ok(m),
        Err(_) => match Array2::<f32>::read_npy(open()?) {
            Ok(m) => Ok(m.mapv(f64::from)),
            Err(e) => Err(EvalError::content(
                path,
                format!("expected a 2-D float32 or float64 .npy array in C order: {e}"),
            )),
        },
    }
}

fn read_csv_matrix(path: &Path) -> Result<Array2<f64>> {
    let mut values: Vec<f64> = Vec::new();
    let mut cols: Option<usize> = None;
    let mut rows = 0usize;
    let mut first = true;
    for_each_line(path, |line_no, line| {
        let ctx = LineCtx { path, line: line_no };
        let fields: Vec<&str> = line.split(',').collect();
        if first {
            first = false;
            if fields.iter().any(|f| f.trim().parse::<f64>().is_err()) {
                return Ok(()); // a header line
            }
        }
        match cols {
            None => cols = Some(fields.len()),
            Some(c) if c != fields.len() => {
                return Err(ctx.error(format!("expected {c} values like the first row, found {}", fields.len())))
            }
            _ => {}
        }
        for (i, f) in fields.iter().enumerate() {
            values.push(ctx.f64_field(&format!("{i}"), f)?);
        }
        rows += 1;
        Ok(())
    })?;
    let cols = cols.unwrap_or(0);
    Array2::from_shape_vec((rows, cols), values).map_err(|e| EvalError::content(path, e.to_string()))
}
