//! The `visage` Python package's native module (`visage._visage`): thin
//! bindings over the library crates, shaped like insightface's
//! `FaceAnalysis`. Every number comes from the same code the `visage`
//! command runs (visage-infer's registry and pipeline, visage-eval's ROC and
//! clustering, visage-gallery's stores); this crate only converts between
//! Python objects and the library's types.
//!
//! Two rules hold for every entry point:
//! - the work runs with the GIL released (`Python::detach`), so other
//!   Python threads run meanwhile and two threads may call in at once;
//! - nothing escapes as a crash: library errors and refused input become
//!   `visage.Error` (an `Exception`) with the reason, and a Rust panic is
//!   caught at the boundary ([`guarded`]) and raised as `visage.Error` too,
//!   never as PyO3's `PanicException` (a `BaseException`, which
//!   `except Exception` would not catch).

mod convert;
mod eval;
mod face;
mod gallery;

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    visage,
    Error,
    PyException,
    "Raised for input visage cannot use (not an image, a wrongly shaped or typed array, a missing file, an unknown model name, a bad option) and for failures of the models or the gallery; the message says which and why."
);

/// A `visage.Error` carrying `message`.
pub(crate) fn error(message: impl std::fmt::Display) -> PyErr {
    Error::new_err(message.to_string())
}

/// Runs `work` with the GIL released and any panic caught: a panic becomes
/// `visage.Error("internal error: …")` instead of unwinding into Python.
pub(crate) fn guarded<T: Send>(py: Python<'_>, work: impl FnOnce() -> Result<T, String> + Send) -> PyResult<T> {
    let outcome = py.detach(|| catch_unwind(AssertUnwindSafe(work)));
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => Err(error(message)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            Err(error(format!("internal error (please report it): {what}")))
        }
    }
}

/// The native module; `visage/__init__.py` re-exports its names.
#[pymodule]
#[pyo3(name = "_visage")]
fn visage_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Error", m.py().get_type::<Error>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEFAULT_DETECTOR", visage_infer::registry::DEFAULT_DETECTOR)?;
    m.add("DEFAULT_RECOGNIZER", visage_infer::registry::DEFAULT_RECOGNIZER)?;
    m.add_class::<face::FaceAnalysis>()?;
    m.add_class::<face::Face>()?;
    m.add_class::<gallery::Gallery>()?;
    m.add_function(wrap_pyfunction!(face::read_image, m)?)?;
    m.add_function(wrap_pyfunction!(eval::roc, m)?)?;
    m.add_function(wrap_pyfunction!(eval::cluster, m)?)?;
    m.add_function(wrap_pyfunction!(eval::panic_for_tests, m)?)?;
    Ok(())
}
