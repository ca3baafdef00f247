//! External clustering metrics: compare predicted cluster labels with the
//! identities. DBSCAN noise (`-1`) counts as one singleton cluster per item.

pub mod bcubed;
pub mod contingency;
pub mod nmi;
pub mod pairwise;

use serde::Serialize;

pub use contingency::{Contingency, NOISE};

/// The `visage eval clusters --json` contract. Every value lies in [0, 1],
/// 1 = the predicted clusters are exactly the identities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClusterScores {
    /// Share of same-cluster pairs that are same-identity ([`pairwise`]; 1 with no such pair).
    pub pairwise_precision: f64,
    /// Share of same-identity pairs put in one cluster (1 with no such pair).
    pub pairwise_recall: f64,
    /// Harmonic mean of the two pairwise rates.
    pub pairwise_f: f64,
    /// Per-face share of its cluster that has its identity, averaged ([`bcubed`]).
    pub bcubed_precision: f64,
    /// Per-face share of its identity that is in its cluster, averaged.
    pub bcubed_recall: f64,
    /// Harmonic mean of the two B-cubed rates.
    pub bcubed_f: f64,
    /// Normalised mutual information, arithmetic normalisation ([`nmi`]).
    pub nmi: f64,
}

/// All metrics of `pred` against `truth` (same length; checked by the caller).
pub fn cluster_scores(truth: &[i64], pred: &[i64]) -> ClusterScores {
    let table = Contingency::new(truth, pred);
    let (pairwise_precision, pairwise_recall, pairwise_f) = pairwise::pairwise_prf(&table);
    let (bcubed_precision, bcubed_recall, bcubed_f) = bcubed::bcubed_prf(&table);
    ClusterScores { pairwise_precision, pairwise_recall, pairwise_f, bcubed_precision, bcubed_recall, bcubed_f, nmi: nmi::nmi(&table) }
}
