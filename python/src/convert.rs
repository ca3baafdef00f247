//! Python objects in, library types out (and back): photos given as paths or
//! numpy arrays, numeric arrays of any numeric dtype, and JSON-shaped results
//! as Python dicts and lists.

use std::path::PathBuf;

use numpy::{PyArray1, PyArray2, PyArray3, PyArrayDescrMethods, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyString;
use visage_infer::{DecodeOptions, RgbImage};

use crate::error;

/// A photo as the caller gave it.
pub enum Photo {
    /// A file, decoded (EXIF orientation applied, pixel limit checked) as the command line decodes it.
    Path(PathBuf),
    /// Pixels already in memory, with the name errors and refusals call them.
    Pixels { image: RgbImage, name: String },
}

impl Photo {
    /// Reads `object`: a `str` or `os.PathLike` path, or an H×W×3 `uint8`
    /// RGB numpy array (any strides). `index` names an array in errors and
    /// refusals (`array 0`, `array 1`, …; `array` alone when `None`).
    pub fn from_python(object: &Bound<'_, PyAny>, index: Option<usize>) -> PyResult<Self> {
        if let Ok(array) = object.cast::<PyUntypedArray>() {
            let name = match index {
                Some(i) => format!("array {i}"),
                None => "array".to_string(),
            };
            return Ok(Photo::Pixels { image: rgb_from_array(array, &name)?, name });
        }
        let is_path = object.is_instance_of::<PyString>() || object.hasattr("__fspath__")?;
        if is_path {
            let path: PathBuf = object.extract().map_err(|e| error(format!("not a usable path: {e}")))?;
            return Ok(Photo::Path(path));
        }
        Err(error(format!(
            "an image is a path (str or os.PathLike) or an H×W×3 uint8 RGB numpy array, not {}",
            object.get_type().name().map_or_else(|_| "this object".to_string(), |n| n.to_string())
        )))
    }

    /// The name errors and gallery sources use: the path as given, or the array's name.
    pub fn name(&self) -> String {
        match self {
            Photo::Path(path) => path.display().to_string(),
            Photo::Pixels { name, .. } => name.clone(),
        }
    }

    /// The decoded pixels (a file is read and decoded now, off the GIL).
    pub fn decode(self) -> Result<(PathBuf, RgbImage), visage_infer::InferError> {
        match self {
            Photo::Path(path) => {
                let image = visage_infer::load_rgb(&path, &DecodeOptions::default())?;
                Ok((path, image))
            }
            Photo::Pixels { image, name } => Ok((PathBuf::from(name), image)),
        }
    }
}

/// An H×W×3 uint8 array copied into an [`RgbImage`], or why it is not one.
fn rgb_from_array(array: &Bound<'_, PyUntypedArray>, name: &str) -> PyResult<RgbImage> {
    let py = array.py();
    let describe = || format!("dtype {} and shape {:?}", array.dtype().str().map_or_else(|_| "?".into(), |s| s.to_string()), array.shape());
    let is_u8 = array.dtype().is_equiv_to(&numpy::dtype::<u8>(py));
    let shape = array.shape();
    if !is_u8 || shape.len() != 3 || shape[2] != 3 {
        return Err(error(format!("{name}: an image array must be H×W×3 uint8 RGB, this one has {}", describe())));
    }
    let (height, width) = (shape[0], shape[1]);
    if height == 0 || width == 0 {
        return Err(error(format!("{name}: the image array is empty ({height}×{width} pixels)")));
    }
    let pixels_limit = DecodeOptions::default().max_pixels;
    if (height as u64).saturating_mul(width as u64) > pixels_limit {
        return Err(error(format!("{name}: {width}×{height} pixels is above the limit of {pixels_limit} (as for photo files)")));
    }
    let (Ok(width32), Ok(height32)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(error(format!("{name}: {width}×{height} pixels is too large")));
    };
    let typed = array.cast::<PyArray3<u8>>().map_err(|e| error(format!("{name}: {e}")))?;
    let readonly = typed.try_readonly().map_err(|e| error(format!("{name}: {e}")))?;
    let view = readonly.as_array();
    let bytes: Vec<u8> = match view.as_slice() {
        Some(contiguous) => contiguous.to_vec(),
        None => view.iter().copied().collect(),
    };
    RgbImage::from_raw(width32, height32, bytes).ok_or_else(|| error(format!("{name}: pixel buffer does not match {width}×{height}×3")))
}

/// `object` as a 1-D float64 vector (any numeric array-like: lists, numpy
/// arrays of any numeric or bool dtype), through `numpy.asarray`.
pub fn f64_vector(object: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<f64>> {
    let array = as_float64(object, what)?;
    let array = array.cast::<PyArray1<f64>>().map_err(|_| error(format!("{what}: expected a 1-D array, got shape {:?}", array.shape())))?;
    let readonly = array.try_readonly().map_err(|e| error(format!("{what}: {e}")))?;
    Ok(readonly.as_array().iter().copied().collect())
}

/// `object` as a 2-D float64 matrix, one row per embedding.
pub fn f64_matrix(object: &Bound<'_, PyAny>, what: &str) -> PyResult<ndarray::Array2<f64>> {
    let array = as_float64(object, what)?;
    let array = array
        .cast::<PyArray2<f64>>()
        .map_err(|_| error(format!("{what}: expected a 2-D array (one row per embedding), got shape {:?}", array.shape())))?;
    let readonly = array.try_readonly().map_err(|e| error(format!("{what}: {e}")))?;
    Ok(readonly.as_array().to_owned())
}

/// `numpy.asarray(object, dtype=float64)`, refusing non-numeric input
/// (strings, objects, complex numbers) with a `visage.Error`.
fn as_float64<'py>(object: &Bound<'py, PyAny>, what: &str) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = object.py();
    let numpy = py.import("numpy")?;
    let given = numpy.call_method1("asarray", (object,)).map_err(|e| error(format!("{what}: not an array: {e}")))?;
    let kind: String = given.getattr("dtype")?.getattr("kind")?.extract()?;
    if !matches!(kind.as_str(), "b" | "i" | "u" | "f") {
        let dtype = given.getattr("dtype")?.str()?.to_string();
        return Err(error(format!("{what}: expected numbers, got an array of dtype {dtype}")));
    }
    let converted = numpy.call_method1("ascontiguousarray", (given, numpy.getattr("float64")?))?;
    converted.cast_into::<PyUntypedArray>().map_err(|e| error(format!("{what}: {e}")))
}

/// A serialisable result as plain Python objects, through its JSON text:
/// the very numbers the command line's `--json` prints (an `f32` such as a
/// cosine becomes the same shortest decimal, then the same Python float).
pub fn json_to_python<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| error(format!("internal error: cannot serialise a result: {e}")))?;
    py.import("json")?.call_method1("loads", (text,))
}
