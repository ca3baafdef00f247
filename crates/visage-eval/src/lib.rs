//! visage-eval: evaluation of face recognition from embeddings, scores and
//! labels — no model needed. The `visage eval …` and `visage cluster`
//! commands (crate visage-cli) are thin callers of this library.
//!
//! - [`roc`]: exact ROC, AUC, EER, TAR@FAR (ties handled, radix-sorted by [`sort`]).
//! - [`verification`]: insightface's 10-fold verification accuracy (LFW-style `.bin` sets).
//! - [`ijb`]: IJB-B/C templates, 1:1 TAR@FAR and 1:N CMC / TPIR@FPIR.
//! - [`erc`]: error-versus-reject curves of face quality measures (MagFace).
//! - [`cluster`]: k-means, agglomerative, DBSCAN; MagFace's magnitude analysis.
//! - [`metrics`]: clustering metrics (pairwise, B-cubed, NMI).
//! - [`magnitude_figures`]: MagFace's figures: mean face per magnitude bin,
//!   magnitude against centrality in the cluster.
//! - [`io`]: readers of scores CSV, embeddings (`.npy`/CSV), labels, pair
//!   lists, `.bin` sets and IJB metadata; the labels writer.
//! - [`plot`], [`report`]: charts (SVG/PNG, face montages) and the
//!   self-contained HTML report.
//! - [`error`]: [`EvalError`], which names the file (and line) at fault.

#![warn(missing_docs)]

pub mod cluster;
pub mod erc;
pub mod error;
pub mod ijb;
pub mod io;
pub mod magnitude_figures;
pub mod metrics;
pub mod plot;
pub mod report;
pub mod roc;
pub mod sort;
pub mod verification;

pub use error::{EvalError, Result};
