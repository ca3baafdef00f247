//! `visage.roc` and `visage.cluster`: visage-eval on arrays held in memory,
//! checked and computed as `visage eval roc` and `visage cluster` do on files.

use std::path::Path;

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use visage_eval::cluster::{Linkage, MethodKind, MethodOptions, Metric};
use visage_eval::io::embeddings::check_matrix;
use visage_eval::roc::{check_rates, roc_summary, LabelledScores, DEFAULT_FARS};

use crate::convert::{f64_matrix, f64_vector, json_to_python};
use crate::{error, guarded};

/// ROC of a verification experiment: AUC, EER and TAR at each FAR target.
///
/// Args:
///     scores: one similarity per pair (higher = more alike), finite.
///     labels: one label per pair, 1 = same identity, 0 = different
///         (bool or numbers equal to 0 or 1).
///     fars: FAR targets in [0, 1] (default ``1e-6 … 1e-1``, as the command line).
///
/// Returns:
///     dict: ``{"auc", "eer", "tar_at_far": [{"far", "tar"}, …]}``, exactly
///     ``visage eval roc --json`` on the same pairs.
///
/// Raises:
///     visage.Error: lengths that differ, a non-finite score, a label other
///         than 0/1, only one class present, or a FAR outside [0, 1].
#[pyfunction]
#[pyo3(signature = (scores, labels, fars = None))]
pub fn roc<'py>(
    py: Python<'py>,
    scores: &Bound<'py, PyAny>,
    labels: &Bound<'py, PyAny>,
    fars: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let scores = f64_vector(scores, "scores")?;
    let labels = f64_vector(labels, "labels")?;
    let fars = match fars {
        Some(fars) => f64_vector(fars, "fars")?,
        None => DEFAULT_FARS.to_vec(),
    };
    let report = guarded(py, || {
        check_rates("fars", &fars).map_err(|e| e.to_string())?;
        let pairs = LabelledScores::from_labels(&scores, &labels)?;
        Ok(roc_summary(&pairs, &fars).report())
    })?;
    json_to_python(py, &report)
}

/// Clusters embeddings, as ``visage cluster`` does.
///
/// Args:
///     X: ``(N, D)`` embeddings, one row per face (any float dtype; finite).
///     method: ``"ahc"`` (agglomerative), ``"dbscan"`` or ``"kmeans"``.
///     metric: ``"cosine"`` (``1 − cos``, default) or ``"euclidean"``.
///     threshold: AHC: apply merges below this distance (or give ``k``).
///     linkage: AHC: ``"average"`` (default), ``"complete"`` or ``"single"``.
///     eps: DBSCAN: neighbourhood radius (required).
///     min_samples: DBSCAN: neighbours, itself included, of a core point (default 5).
///     k: k-means: number of clusters (required); AHC: instead of ``threshold``.
///     restarts: k-means: k-means++ restarts (default 10).
///     seed: k-means: random seed (default 0).
///
/// Returns:
///     numpy.ndarray: ``int64`` labels of shape ``(N,)``, clusters numbered
///     from 0, ``-1`` for DBSCAN's noise.
///
/// Raises:
///     visage.Error: an empty, non-2-D or non-finite ``X``, an unknown method,
///         metric or linkage, or options that do not fit the method.
#[pyfunction]
#[pyo3(signature = (X, method, *, metric = "cosine", threshold = None, linkage = "average", eps = None, min_samples = 5, k = None, restarts = 10, seed = 0))]
#[allow(clippy::too_many_arguments, non_snake_case)]
pub fn cluster<'py>(
    py: Python<'py>,
    X: &Bound<'py, PyAny>,
    method: &str,
    metric: &str,
    threshold: Option<f64>,
    linkage: &str,
    eps: Option<f64>,
    min_samples: i64,
    k: Option<i64>,
    restarts: i64,
    seed: u64,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let kind = match method {
        "dbscan" => MethodKind::Dbscan,
        "ahc" => MethodKind::Ahc,
        "kmeans" => MethodKind::Kmeans,
        other => return Err(error(format!("method {other:?}: expected \"ahc\", \"dbscan\" or \"kmeans\""))),
    };
    let metric = match metric {
        "cosine" => Metric::Cosine,
        "euclidean" => Metric::Euclidean,
        other => return Err(error(format!("metric {other:?}: expected \"cosine\" or \"euclidean\""))),
    };
    let linkage = match linkage {
        "average" => Linkage::Average,
        "complete" => Linkage::Complete,
        "single" => Linkage::Single,
        other => return Err(error(format!("linkage {other:?}: expected \"average\", \"complete\" or \"single\""))),
    };
    let count = |name: &str, value: i64| usize::try_from(value).map_err(|_| error(format!("{name} {value}: expected a count ≥ 0")));
    let options = MethodOptions {
        kind,
        metric,
        eps,
        min_samples: count("min_samples", min_samples)?,
        linkage,
        threshold,
        k: k.map(|k| count("k", k)).transpose()?,
        restarts: count("restarts", restarts)?,
        seed,
    };
    let x = f64_matrix(X, "X")?;
    let labels = guarded(py, || {
        let x = check_matrix(x, Path::new("X")).map_err(|e| e.to_string())?;
        let method = options.method(x.nrows(), str::to_string).map_err(|e| e.to_string())?;
        Ok(method.labels(&x))
    })?;
    Ok(labels.into_pyarray(py))
}

/// Panics inside the library boundary: lets the tests check that a Rust
/// panic reaches Python as ``visage.Error``, not as a crash.
#[pyfunction]
#[pyo3(name = "_panic_for_tests")]
pub fn panic_for_tests(py: Python<'_>) -> PyResult<()> {
    guarded(py, || -> Result<(), String> { panic!("a deliberate panic") })
}
