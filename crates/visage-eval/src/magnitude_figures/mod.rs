//! MagFace's two figures about the feature magnitude `‖x‖` (Meng et al.,
//! CVPR 2021): the **mean face per magnitude bin** (the paper's IJB-C row of
//! eight averaged aligned faces, from `‖x‖ < 24` to `‖x‖ ≥ 36`: faces grow
//! sharper, more frontal and less occluded as the magnitude grows), and the
//! magnitude against the **confidence of being a cluster centre** (the
//! paper's clustering figure: high-magnitude faces sit near the centres of
//! their clusters, low-magnitude ones at the edges).
//!
//! - [`bins`]: bin edges from the data (quantiles, equal widths) or given,
//!   the partition of the faces into bins, the pixel-wise mean of crops;
//! - [`centrality`]: two per-face measures of how central a face is in its
//!   cluster, and their rank correlation with the magnitude.
//!
//! The pictures are drawn by [`crate::plot::mean_faces`] and
//! [`crate::plot::scatter`]; `visage analyze` and `visage eval
//! magnitude-figures` (crate visage-analyze) put them together.

pub mod bins;
pub mod centrality;

pub use bins::{bin_magnitudes, empty_tile, mean_image, Binning, MagnitudeBin};
pub use centrality::{centre_cosines, knn_confidences, rank_correlation, Correlation};
