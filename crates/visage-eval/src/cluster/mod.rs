//! Clustering of face embeddings: k-means, agglomerative (NN-chain) and
//! DBSCAN, over cosine or euclidean distance; the graph side of L-GCN
//! (pivot subgraphs and the merge of predicted links, [`lgcn`]); plus the
//! magnitude analysis of MagFace.

pub mod ahc;
pub mod dbscan;
pub mod distance;
pub mod kmeans;
pub mod lgcn;
pub mod magnitude;
pub mod neighbors;
pub mod product;
pub mod union_find;

pub use ahc::{ahc, AhcConfig, AhcStop, Linkage};
pub use dbscan::{dbscan, DbscanConfig};
pub use distance::Metric;
pub use kmeans::{kmeans, KmeansConfig};

use ndarray::Array2;

use crate::EvalError;

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

/// Which of the three methods, before its parameters are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// [`dbscan()`].
    Dbscan,
    /// [`ahc()`].
    Ahc,
    /// [`kmeans()`].
    Kmeans,
}

/// The options of a clustering run as a caller collects them (`visage
/// cluster`'s flags, the Python package's keyword arguments), with their
/// defaults; [`MethodOptions::method`] checks them against each other and
/// against the rows to cluster, so every front end refuses the same things.
#[derive(Debug, Clone, Copy)]
pub struct MethodOptions {
    /// The method.
    pub kind: MethodKind,
    /// Distance between embeddings (default cosine).
    pub metric: Metric,
    /// DBSCAN's neighbourhood radius (required for DBSCAN, ≥ 0).
    pub eps: Option<f64>,
    /// DBSCAN: neighbours (itself included) that make a core point (default 5, ≥ 1).
    pub min_samples: usize,
    /// AHC linkage (default average).
    pub linkage: Linkage,
    /// AHC: apply merges below this distance (exclusive with `k`).
    pub threshold: Option<f64>,
    /// Number of clusters: k-means (required), AHC (instead of `threshold`), ≥ 1.
    pub k: Option<usize>,
    /// k-means restarts, k-means++ seeding each time (default 10; 0 counts as 1).
    pub restarts: usize,
    /// k-means random seed (default 0).
    pub seed: u64,
}

impl MethodOptions {
    /// `kind` with every other option at its default.
    pub fn new(kind: MethodKind) -> Self {
        MethodOptions {
            kind,
            metric: Metric::Cosine,
            eps: None,
            min_samples: 5,
            linkage: Linkage::Average,
            threshold: None,
            k: None,
            restarts: 10,
            seed: 0,
        }
    }

    /// The method with its parameters, or why the options do not fit each
    /// other or the `rows` embeddings to cluster ([`EvalError::Invalid`]).
    /// `spell` writes an option's name (given in snake case) the way the
    /// caller's users type it: `--min-samples` on the command line,
    /// `min_samples` in Python.
    pub fn method(&self, rows: usize, spell: impl Fn(&str) -> String) -> crate::Result<Method> {
        let invalid = |message: String| Err(EvalError::Invalid(message));
        let metric = self.metric;
        Ok(match self.kind {
            MethodKind::Dbscan => {
                let Some(eps) = self.eps else { return invalid(format!("{} dbscan needs {}", spell("method"), spell("eps"))) };
                if !(eps.is_finite() && eps >= 0.0) || self.min_samples == 0 {
                    return invalid(format!("{} must be ≥ 0 and {} ≥ 1", spell("eps"), spell("min_samples")));
                }
                Method::Dbscan(DbscanConfig { eps, min_samples: self.min_samples, metric })
            }
            MethodKind::Ahc => {
                let stop = match (self.threshold, self.k) {
                    (Some(t), None) if t.is_finite() => AhcStop::DistanceThreshold(t),
                    (None, Some(k)) if k >= 1 => AhcStop::Clusters(k),
                    _ => {
                        let (method, threshold, k) = (spell("method"), spell("threshold"), spell("k"));
                        return invalid(format!("{method} ahc needs exactly one of {threshold} T or {k} K (≥ 1)"));
                    }
                };
                Method::Ahc(AhcConfig { linkage: self.linkage, metric, stop })
            }
            MethodKind::Kmeans => {
                let Some(k) = self.k.filter(|&k| k >= 1) else {
                    return invalid(format!("{} kmeans needs {} K (≥ 1)", spell("method"), spell("k")));
                };
                if k > rows {
                    return invalid(format!("{} {k} exceeds the {rows} embeddings", spell("k")));
                }
                Method::Kmeans(KmeansConfig { restarts: self.restarts.max(1), seed: self.seed, ..KmeansConfig::new(k, metric) })
            }
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(name: &str) -> String {
        format!("--{}", name.replace('_', "-"))
    }

    #[test]
    fn options_are_checked_and_named_as_the_caller_spells_them() {
        let dbscan = MethodOptions::new(MethodKind::Dbscan);
        assert_eq!(dbscan.method(3, flag).unwrap_err().to_string(), "--method dbscan needs --eps");
        let negative = MethodOptions { eps: Some(-1.0), ..dbscan };
        assert_eq!(negative.method(3, str::to_string).unwrap_err().to_string(), "eps must be ≥ 0 and min_samples ≥ 1");
        let Method::Dbscan(config) = MethodOptions { eps: Some(0.4), ..dbscan }.method(3, flag).unwrap() else { panic!("not dbscan") };
        assert_eq!((config.eps, config.min_samples, config.metric), (0.4, 5, Metric::Cosine));

        let ahc = MethodOptions::new(MethodKind::Ahc);
        assert!(ahc.method(3, flag).unwrap_err().to_string().contains("exactly one of --threshold T or --k K"));
        assert!(MethodOptions { threshold: Some(0.5), k: Some(2), ..ahc }.method(3, flag).is_err());
        assert!(MethodOptions { threshold: Some(f64::NAN), ..ahc }.method(3, flag).is_err());
        let Method::Ahc(config) = MethodOptions { k: Some(2), ..ahc }.method(3, flag).unwrap() else { panic!("not ahc") };
        assert!(matches!(config.stop, AhcStop::Clusters(2)) && config.linkage == Linkage::Average);

        let kmeans = MethodOptions { k: Some(4), ..MethodOptions::new(MethodKind::Kmeans) };
        assert_eq!(kmeans.method(3, str::to_string).unwrap_err().to_string(), "k 4 exceeds the 3 embeddings");
        let Method::Kmeans(config) = MethodOptions { restarts: 0, ..kmeans }.method(4, flag).unwrap() else { panic!("not kmeans") };
        assert_eq!((config.k, config.restarts, config.seed), (4, 1, 0));
    }
}
