//! Clustering of face embeddings: k-means, agglomerative (NN-chain) and
//! DBSCAN, over cosine or euclidean distance; plus the magnitude analysis
//! of MagFace.

pub mod ahc;
pub mod dbscan;
pub mod distance;
pub mod kmeans;
pub mod magnitude;
pub mod neighbors;
pub mod product;
pub mod union_find;

pub use ahc::{ahc, AhcConfig, AhcStop, Linkage};
pub use dbscan::{dbscan, DbscanConfig};
pub use distance::Metric;
pub use kmeans::{kmeans, KmeansConfig};

use ndarray::Array2;

/// One of the three clustering methods with its parameters, for callers that
/// pick the method at run time (`visage cluster --method …`).
#[derive(Debug, Clone, Copy)]
pub enum Method {
    /// [`dbscan()`]: density-based, leaves noise (`-1`).
    Dbscan(DbscanConfig),
    /// [`ahc()`]: agglomerative, cut at a distance or a cluster count.
    Ahc(AhcConfig),
    /// [`kmeans()`]: the labels of the best restart (lowest inertia).
    Kmeans(KmeansConfig),
}

impl Method {
    /// Clusters the rows of `x` (one embedding per row): one label per row,
    /// clusters numbered from 0, `-1` for DBSCAN's noise. The parameters are
    /// used as given (k-means clamps `k` to `1 ..= rows`; a DBSCAN
    /// `min_samples` of 0 makes every point a core point).
    pub fn labels(&self, x: &Array2<f64>) -> Vec<i64> {
        match self {
            Method::Dbscan(config) => dbscan(x, config),
            Method::Ahc(config) => ahc(x, config),
            Method::Kmeans(config) => kmeans(x, config).labels,
        }
    }
}
