//! `visage cluster`: embeddings clustered by DBSCAN, agglomerative
//! clustering, k-means or L-GCN into a labels file, with MagFace's magnitude
//! report on request; `visage cluster train-lgcn` trains an L-GCN model.
//! Exit codes as `visage eval` (see `eval.rs`).

use std::collections::HashSet;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use visage_backend::{Cpu, CpuAutodiff};
use visage_eval::cluster::{self, magnitude::magnitude_report, MethodKind, MethodOptions};
use visage_eval::io::embeddings::read_embeddings;
use visage_eval::io::labels::{read_labels, write_labels};
use visage_eval::EvalError;
use visage_train::lgcn::{self, LgcnError, LgcnModel, LgcnTrainOptions};

use super::eval::{cannot_write, input, print_line};
use super::Failure;

/// Clustering method of `visage cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterMethod {
    Dbscan,
    Ahc,
    Kmeans,
    /// L-GCN (Wang et al. 2019): a graph network links each face to its
    /// neighbours; the bundled model unless --model.
    Lgcn,
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
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: Option<ClusterCommand>,
    #[arg(long, value_enum, required = true)]
    method: Option<ClusterMethod>,
    #[arg(long, value_enum, default_value_t = Metric::Cosine)]
    metric: Metric,
    /// Embeddings: `.npy` (2-D float32/float64) or CSV, one row per face.
    #[arg(long, required = true)]
    input: Option<PathBuf>,
    /// Where to write the labels, one integer per line (−1 = noise).
    #[arg(long, required = true)]
    output: Option<PathBuf>,
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
    /// L-GCN: a model file of `visage cluster train-lgcn` (default: the bundled model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// L-GCN: link likelihood at or above which two faces join (default: the model's).
    #[arg(long)]
    link_threshold: Option<f64>,
}

/// Subcommands of `visage cluster`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Train an L-GCN model on labelled embeddings plus synthetic identities fitted to them.
    TrainLgcn(TrainLgcnArgs),
}

/// Arguments of `visage cluster train-lgcn`.
#[derive(Debug, Args)]
pub struct TrainLgcnArgs {
    /// Embeddings: `.npy` (2-D float32/float64) or CSV, one row per face.
    #[arg(long)]
    embeddings: PathBuf,
    /// Identity of each row, one integer per line (−1: a face of its own).
    #[arg(long)]
    labels: PathBuf,
    /// Where to write the model (safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Seed of every draw: the same inputs and seed give the same model.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Passes over all training subgraphs.
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Synthetic scenes (identity mixtures fitted to the embeddings).
    #[arg(long, default_value_t = 200)]
    synthetic_scenes: usize,
    /// Scenes of half the real identities plus synthetic ones.
    #[arg(long, default_value_t = 40)]
    mixed_scenes: usize,
    /// Held-out synthetic scenes on which the best link threshold is reported.
    #[arg(long, default_value_t = 20)]
    validation_scenes: usize,
    /// 1-hop neighbours per pivot.
    #[arg(long, default_value_t = 10)]
    k1: usize,
    /// 2-hop neighbours per 1-hop node.
    #[arg(long, default_value_t = 5)]
    k2: usize,
    /// Edges join each node to its u nearest neighbours in the subgraph.
    #[arg(long, default_value_t = 5)]
    u: usize,
    /// Subgraphs per training step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Train on the scenes as they are, without turning each by a random rotation.
    #[arg(long)]
    no_rotation: bool,
    /// What the model was trained on, stored in the file.
    #[arg(long, default_value = "")]
    trained_on: String,
    /// Also write the training report (losses, chosen threshold) as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// An L-GCN error with its exit code (2: bad input, 1: the machine's).
fn lgcn_failure(error: LgcnError) -> Failure {
    Failure { exit_code: if error.is_bad_input() { 2 } else { 1 }, message: error.to_string() }
}

impl TrainLgcnArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let out = &mut std::io::stdout().lock();
        let x = read_embeddings(&self.embeddings).map_err(input)?;
        let labels = read_labels(&self.labels).map_err(input)?;
        if labels.len() != x.nrows() {
            return Err(Failure::bad_input(format!(
                "{}: {} labels for the {} rows of {}",
                self.labels.display(),
                labels.len(),
                x.nrows(),
                self.embeddings.display()
            )));
        }
        if !self.learning_rate.is_finite() || self.learning_rate <= 0.0 {
            return Err(Failure::bad_input("--learning-rate must be a positive number"));
        }
        let options = LgcnTrainOptions {
            seed: self.seed,
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            synthetic_scenes: self.synthetic_scenes,
            mixed_scenes: self.mixed_scenes,
            validation_scenes: self.validation_scenes,
            ips: cluster::lgcn::IpsConfig { k1: self.k1, k2: self.k2, u: self.u },
            trained_on: self.trained_on.clone(),
            rotate: !self.no_rotation,
            ..LgcnTrainOptions::default()
        };
        let (model, report) = lgcn::train_lgcn::<CpuAutodiff>(&x, &labels, &options, &Default::default()).map_err(lgcn_failure)?;
        model.write(&self.out).map_err(lgcn_failure)?;
        for (i, epoch) in report.epochs.iter().enumerate() {
            print_line(out, format!("epoch {}: loss {:.4}, link accuracy {:.4}", i + 1, epoch.loss, epoch.accuracy))?;
        }
        print_line(
            out,
            format!(
                "{} subgraphs from {} scenes ({:.1} % positive links), {} parameters, {:.0} s; link threshold {:.2} (best on synthetic validation scenes: {:.2}, pairwise F {:.4}); model in {}",
                report.subgraphs,
                report.scenes,
                100.0 * report.positive_share,
                report.parameters,
                report.seconds,
                model.settings.merge.threshold,
                report.synthetic_best_threshold,
                report.synthetic_best_pairwise_f,
                self.out.display()
            ),
        )?;
        if let Some(path) = &self.report {
            let text = serde_json::to_string_pretty(&report).expect("serialisable");
            std::fs::write(path, text).map_err(cannot_write(path.display()))?;
        }
        Ok(())
    }
}

impl ClusterArgs {
    pub fn run(&self) -> Result<(), Failure> {
        if let Some(ClusterCommand::TrainLgcn(args)) = &self.command {
            return args.run();
        }
        let (Some(method), Some(input_path), Some(output)) = (self.method, &self.input, &self.output) else {
            return Err(Failure::bad_input("visage cluster needs --method, --input and --output (or the train-lgcn subcommand)"));
        };
        let out = &mut std::io::stdout().lock();
        if method != ClusterMethod::Lgcn && (self.model.is_some() || self.link_threshold.is_some()) {
            return Err(Failure::bad_input("--model and --link-threshold belong to --method lgcn"));
        }
        let x = read_embeddings(input_path).map_err(input)?;
        let labels = match method {
            ClusterMethod::Lgcn => self.lgcn_labels(&x)?,
            _ => self.method(method, x.nrows())?.labels(&x),
        };
        write_labels(output, &labels).map_err(|e| match e {
            EvalError::Io { source, .. } => cannot_write(output.display())(source),
            other => input(other),
        })?;
        let clusters = labels.iter().filter(|&&l| l >= 0).collect::<HashSet<_>>().len();
        let noise = labels.iter().filter(|&&l| l < 0).count();
        print_line(out, format!("{} faces → {clusters} clusters, {noise} noise; labels in {}", labels.len(), output.display()))?;
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

    /// L-GCN's labels with the chosen or bundled model (cosine only).
    fn lgcn_labels(&self, x: &ndarray::Array2<f64>) -> Result<Vec<i64>, Failure> {
        if self.metric != Metric::Cosine {
            return Err(Failure::bad_input("--method lgcn works on cosine similarity: leave out --metric or give --metric cosine"));
        }
        let device = Default::default();
        let model = match &self.model {
            Some(path) => LgcnModel::<Cpu>::read(path, &device),
            None => LgcnModel::<Cpu>::bundled(&device),
        }
        .map_err(lgcn_failure)?;
        let settings = &model.settings;
        if x.ncols() != settings.network.input_dim {
            let source = self.model.as_ref().map_or("the bundled model".to_string(), |p| p.display().to_string());
            let input_path = self.input.as_ref().map_or(String::new(), |p| p.display().to_string());
            return Err(Failure::bad_input(format!(
                "{input_path}: {}-d embeddings, but {source} takes {}-d ones (train one for these with `visage cluster train-lgcn`)",
                x.ncols(),
                settings.network.input_dim
            )));
        }
        let mut merge = settings.merge;
        if let Some(t) = self.link_threshold {
            if !(t.is_finite() && (0.0..=1.0).contains(&t)) {
                return Err(Failure::bad_input(format!("--link-threshold {t}: must be in [0, 1]")));
            }
            merge.threshold = t;
        }
        Ok(lgcn::cluster(&model.network, x, &settings.ips, &merge, &device))
    }

    /// The method and its parameters from the options, checked against each
    /// other and against the `rows` embeddings to cluster (by visage-eval's
    /// [`MethodOptions::method`], flags named as typed).
    fn method(&self, method: ClusterMethod, rows: usize) -> Result<cluster::Method, Failure> {
        let kind = match method {
            ClusterMethod::Dbscan => MethodKind::Dbscan,
            ClusterMethod::Ahc => MethodKind::Ahc,
            ClusterMethod::Kmeans => MethodKind::Kmeans,
            ClusterMethod::Lgcn => unreachable!("L-GCN runs through lgcn_labels"),
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
