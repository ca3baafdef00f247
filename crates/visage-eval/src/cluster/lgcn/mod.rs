//! The graph side of L-GCN (Wang et al., CVPR 2019, "Linkage-based Face
//! Clustering via Graph Convolution Network"), without the network:
//!
//! - [`subgraph`]: each face's instance pivot subgraph (IPS): its `k1`
//!   nearest neighbours (1-hop), their `k2` nearest (2-hop), edges between
//!   nodes that are among each other's `u` nearest, features relative to the
//!   pivot (paper §3.2);
//! - [`merge`]: the predicted pivot→neighbour linkages pooled per pair and
//!   cut into clusters (§3.4, pseudo-label propagation: a threshold on the
//!   link likelihood, oversized components cut again at a raised threshold);
//! - [`synthetic`]: identity mixtures whose spread is fitted to real
//!   embeddings, the bulk of the training data.
//!
//! The graph convolution network that predicts the linkages is burn code and
//! lives in `visage-train` (`lgcn`); this crate stays free of burn.

pub mod merge;
pub mod subgraph;
pub mod synthetic;

pub use merge::{merge_links, Link, MergeConfig};
pub use subgraph::{knn_cosine, pivot_subgraphs, IpsConfig, PivotSubgraph};
pub use synthetic::{fit_spread, permutation, random_rotation, SceneConfig, SpreadFit};
