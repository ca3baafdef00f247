//! `visage cluster`: embeddings clustered by DBSCAN, agglomerative
//! clustering or k-means into a labels file, with MagFace's magnitude report
//! on request. Exit codes as `visage eval` (see `eval.rs`).

use std::collections::HashSet;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use visage_eval::cluster::{self, magnitude::magnitude_report, MethodKind, MethodOptions};
use visage_eval::io::embeddings::read_embeddings;
use visage_eval::io::labels::write_labels;
use visage_eval::EvalError;

use super::eval::{cannot_write, input, print_line};
use super::Failure;

/// Clustering method of `visage cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterMethod {
    Dbscan,
    Ahc,
    Kmeans,
}

/// Distance between embeddings (visage-eval's [`cluster::Metric`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Metric {
    /// `1 − cos(x, y)`: the usual face-embedding distance.
    Cosine,
    /// `‖x − y‖₂`.
    Euclidean,
}

impl From<Metric> for cluster::Metric {
    fn from(metric: Metric) -> Self {
        match metric {
            Metric::Cosine => cluster::Metric::Cosine,
            Metric::Euclidean => cluster::Metric::Euclidean,
        }
    }
}

/// Cluster-to-cluster distance of AHC (visage-eval's [`cluster::Linkage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Linkage {
    /// Mean pairwise distance (UPGMA).
    Average,
    /// Largest pairwise distance.
    Complete,
    /// Smallest pairwise distance.
    Single,
}

impl From<Linkage> for cluster::Linkage {
    fn from(linkage: Linkage) -> Self {
        match linkage {
            Linkage::Average => cluster::Linkage::Average,
            Linkage::Complete => cluster::Linkage::Complete,
            Linkage::Single => cluster::Linkage::Single,
        }
    }
}

/// Arguments of `visage cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[arg(long, value_enum)]
    method: ClusterMethod,
    #[arg(long, value_enum, default_value_t = Metric::Cosine)]
    metric: Metric,
    /// Embeddings: `.npy` (2-D float32/float64) or CSV, one row per face.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the labels, one integer per line (−1 = noise).
    #[arg(long)]
    output: PathBuf,
    /// DBSCAN neighbourhood radius (in the chosen metric).
    #[arg(long)]
    eps: Option<f64>,
    /// DBSCAN: neighbours (itself included) that make a core point.
    #[arg(long, default_value_t = 5)]
    min_samples: usize,
    /// AHC linkage.
    #[arg(long, value_enum, default_value_t = Linkage::Average)]
    linkage: Linkage,
    /// AHC: apply merges below this distance.
    #[arg(long)]
    threshold: Option<f64>,
    /// Number of clusters (k-means; AHC instead of --threshold).
    #[arg(long)]
    k: Option<usize>,
    /// k-means restarts (k-means++ seeding each time).
    #[arg(long, default_value_t = 10)]
    restarts: usize,
    /// k-means random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write, per cluster, members ordered by feature magnitude and the
    /// magnitude–centre-similarity correlation (MagFace) as JSON.
    #[arg(long)]
    magnitude_report: Option<PathBuf>,
}

impl ClusterArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let out = &mut std::io::stdout().lock();
        let x = read_embeddings(&self.input).map_err(input)?;
        let labels = self.method(x.nrows())?.labels(&x);
        write_labels(&self.output, &labels).map_err(|e| match e {
            EvalError::Io { source, .. } => cannot_write(self.output.display())(source),
            other => input(other),
        })?;
        let clusters = labels.iter().filter(|&&l| l >= 0).collect::<HashSet<_>>().len();
        let noise = labels.iter().filter(|&&l| l < 0).count();
        print_line(out, format!("{} faces → {clusters} clusters, {noise} noise; labels in {}", labels.len(), self.output.display()))?;
        if let Some(path) = &self.magnitude_report {
            let report = magnitude_report(&x, &labels);
            let text = serde_json::to_string_pretty(&report).expect("serialisable");
            std::fs::write(path, text).map_err(cannot_write(path.display()))?;
            if let Some(c) = report.overall_correlation {
                print_line(out, format!("magnitude vs centre similarity: Pearson r = {c:.4} (details in {})", path.display()))?;
            }
        }
        Ok(())
    }

    /// The method and its parameters from the options, checked against each
    /// other and against the `rows` embeddings to cluster (by visage-eval's
    /// [`MethodOptions::method`], flags named as typed).
    fn method(&self, rows: usize) -> Result<cluster::Method, Failure> {
        let kind = match self.method {
            ClusterMethod::Dbscan => MethodKind::Dbscan,
            ClusterMethod::Ahc => MethodKind::Ahc,
            ClusterMethod::Kmeans => MethodKind::Kmeans,
        };
        let options = MethodOptions {
            kind,
            metric: self.metric.into(),
            eps: self.eps,
            min_samples: self.min_samples,
            linkage: self.linkage.into(),
            threshold: self.threshold,
            k: self.k,
            restarts: self.restarts,
            seed: self.seed,
        };
        options.method(rows, |name| format!("--{}", name.replace('_', "-"))).map_err(input)
    }
}
