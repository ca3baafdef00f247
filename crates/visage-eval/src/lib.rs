//! visage-eval: evaluation of face recognition from embeddings, scores and
//! labels — no model needed.
//!
//! - [`roc`]: exact ROC, AUC, EER, TAR@FAR (ties handled, radix-sorted).
//! - [`metrics`]: clustering metrics (pairwise, B-cubed, NMI).
//! - [`cluster`]: k-means, agglomerative, DBSCAN; magnitude analysis.
//! - [`io`]: readers of scores CSV, embeddings (`.npy`/CSV), labels.

pub mod cluster;
pub mod erc;
pub mod error;
pub mod ijb;
pub mod io;
pub mod metrics;
pub mod plot;
pub mod report;
pub mod roc;
pub mod sort;
pub mod verification;

pub use error::{EvalError, Result};
