//! External clustering metrics: compare predicted cluster labels with the
//! identities. DBSCAN noise (`-1`) counts as one singleton cluster per item.

pub mod bcubed;
pub mod contingency;
pub mod nmi;
pub mod pairwise;

use serde::Serialize;

pub use contingency::{Contingency, NOISE};

/// The `visage eval clusters --json` contract.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClusterScores {
    pub pairwise_precision: f64,
    pub pairwise_recall: f64,
    pub pairwise_f: f64,
    pub bcubed_precision: f64,
    pub bcubed_recall: f64,
    pub bcubed_f: f64,
    pub nmi: f64,
}

/// All metrics of `pred` against `truth` (same length; checked by the caller).
pub fn cluster_scores(truth: &[i64], pred: &[i64]) -> ClusterScores {
    let table = Contingency::new(truth, pred);
    let (pairwise_precision, pairwise_recall, pairwise_f) = pairwise::pairwise_prf(&table);
    let (bcubed_precision, bcubed_recall, bcubed_f) = bcubed::bcubed_prf(&table);
    ClusterScores { pairwise_precision, pairwise_recall, pairwise_f, bcubed_precision, bcubed_recall, bcubed_f, nmi: nmi::nmi(&table) }
}
