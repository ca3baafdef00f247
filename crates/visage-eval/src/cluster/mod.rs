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
