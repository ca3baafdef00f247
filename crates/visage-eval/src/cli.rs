//! Command-line surface of visage-eval, mounted by the `visage` binary
//! (crate visage-cli) as `visage eval <EvalCommand>` and
//! `visage cluster <ClusterArgs>`. Parsing lives here so the binary stays a
//! thin dispatcher; every `run` writes its result to stdout.
//!
//! Exit codes: bad input (unreadable or malformed file, wrong header, NaN,
//! one class only, mismatched lengths, bad option values) → 2, see
//! [`CliError::exit_code`].

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use crate::cluster::{self, AhcStop, Linkage, Metric};
use crate::erc::{default_fractions, erc_curve, fixed_threshold, ErcCurve, DEFAULT_TARGET_FMR};
use crate::error::EvalError;
use crate::io::embeddings::read_embeddings;
use crate::io::erc_csv::read_erc_csv;
use crate::io::labels::{read_labels, write_labels};
use crate::io::scores_csv::read_scores_csv;
use crate::metrics::cluster_scores;
use crate::plot::{self, erc::ErcChart, histogram::HistogramChart, roc::RocChart};
use crate::report::{write_html, Section};
use crate::roc::{roc_summary, LabelledScores, RocSummary, DEFAULT_FARS};

/// Failure of a `visage eval` / `visage cluster` command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The input is wrong; the message names the file (and line).
    #[error(transparent)]
    Input(#[from] EvalError),
    /// Options that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// Writing a result failed (disk full, closed pipe, ...).
    #[error("cannot write {what}: {source}")]
    Output {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// 2 for bad input or options (the contract), 1 when writing failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Input(_) | CliError::Usage(_) => 2,
            CliError::Output { .. } => 1,
        }
    }
}

fn output_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let what = what.into();
    move |source| CliError::Output { what, source }
}

fn print_json(out: &mut dyn Write, value: &impl Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).expect("serialisable report");
    writeln!(out, "{text}").map_err(output_err("stdout"))
}

/// `visage eval …` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// ROC, AUC, EER and TAR@FAR of a scores CSV (`score,label`, 1 = same identity).
    Roc(RocArgs),
    /// Compare predicted cluster labels with the true identities.
    Clusters(ClustersArgs),
    /// Error-versus-reject curves of face quality measures (MagFace's ERC).
    Erc(ErcArgs),
    /// Feature-magnitude statistics and histogram of an embedding matrix.
    Magnitudes(MagnitudesArgs),
    /// insightface verification protocol (10-fold accuracy) from a `.bin` set or a pair list.
    Verify(VerifyArgs),
    /// IJB-B/C-style templates: 1:1 TAR@FAR and 1:N CMC / TPIR@FPIR.
    Ijb(IjbArgs),
}

impl EvalCommand {
    pub fn run(&self) -> Result<(), CliError> {
        self.run_to(&mut std::io::stdout().lock())
    }

    /// As [`run`](Self::run), writing the result to `out`.
    pub fn run_to(&self, out: &mut dyn Write) -> Result<(), CliError> {
        match self {
            EvalCommand::Roc(a) => a.run_to(out),
            EvalCommand::Clusters(a) => a.run_to(out),
            EvalCommand::Erc(a) => a.run_to(out),
            EvalCommand::Magnitudes(a) => a.run_to(out),
            EvalCommand::Verify(a) => a.run_to(out),
            EvalCommand::Ijb(a) => a.run_to(out),
        }
    }
}

/// Arguments of `visage eval roc`.
#[derive(Debug, Args)]
pub struct RocArgs {
    /// Scores CSV with header `score,label`. Repeat to compare systems
    /// (plots and report); `--json` then prints one object per file.
    #[arg(long, required = true, num_args = 1..)]
    pub scores: Vec<PathBuf>,
    /// Display names of the systems, in `--scores` order (default: file stems).
    #[arg(long, value_delimiter = ',')]
    pub names: Vec<String>,
    /// FAR targets for TAR@FAR, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_FARS.to_vec())]
    pub far: Vec<f64>,
    /// Print the contract JSON `{"auc", "eer", "tar_at_far": [{"far", "tar"}]}`.
    #[arg(long)]
    pub json: bool,
    /// ROC chart of all systems (log-FAR axis), `.svg` or `.png`.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Genuine/impostor score histogram of the first system, `.svg` or `.png`.
    #[arg(long)]
    pub hist: Option<PathBuf>,
    /// Self-contained HTML report (tables, ROC, histograms).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// One evaluated system.
pub struct NamedRoc {
    pub name: String,
    pub summary: RocSummary,
    /// The scores themselves, kept only when a histogram needs them.
    pub scores: Option<LabelledScores>,
}

fn system_names(paths: &[PathBuf], names: &[String]) -> Result<Vec<String>, CliError> {
    if !names.is_empty() && names.len() != paths.len() {
        return Err(CliError::Usage(format!("--names has {} entries for {} score files", names.len(), paths.len())));
    }
    Ok(paths.iter().enumerate().map(|(i, p)| names.get(i).cloned().unwrap_or_else(|| file_stem(p))).collect())
}

fn file_stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

fn check_fars(fars: &[f64]) -> Result<(), CliError> {
    match fars.iter().find(|f| !(f.is_finite() && **f >= 0.0 && **f <= 1.0)) {
        Some(f) => Err(CliError::Usage(format!("--far {f}: expected rates between 0 and 1"))),
        None => Ok(()),
    }
}

impl RocArgs {
    pub fn run(&self) -> Result<(), CliError> {
        self.run_to(&mut std::io::stdout().lock())
    }

    pub fn evaluate(&self) -> Result<Vec<NamedRoc>, CliError> {
        check_fars(&self.far)?;
        let names = system_names(&self.scores, &self.names)?;
        let mut systems = Vec::new();
        for (path, name) in self.scores.iter().zip(names) {
            let scores = read_scores_csv(path)?;
            let summary = roc_summary(&scores, &self.far);
            // scores are kept only when a histogram will be drawn
            let kept = (self.hist.is_some() || self.report.is_some()).then_some(scores);
            systems.push(NamedRoc { name, summary, scores: kept });
        }
        Ok(systems)
    }

    fn charts(&self, systems: &[NamedRoc]) -> Result<(), CliError> {
        let roc_chart = || RocChart { title: "ROC".into(), systems: systems.iter().map(|s| (s.name.as_str(), s.summary.curve.as_slice())).collect() };
        let hist = |s: &NamedRoc| {
            let scores = s.scores.as_ref().expect("scores kept for histograms");
            HistogramChart::new(
                &format!("Score distributions: {}", s.name),
                "Score",
                &[("genuine", scores.genuine.as_slice()), ("impostor", scores.impostor.as_slice())],
                80,
            )
        };
        if let Some(path) = &self.plot {
            plot::save(&roc_chart(), path)?;
        }
        if let Some(path) = &self.hist {
            plot::save(&hist(&systems[0]), path)?;
        }
        if let Some(path) = &self.report {
            let mut header = vec!["system".to_string(), "genuine".into(), "impostor".into(), "AUC".into(), "EER".into()];
            header.extend(self.far.iter().map(|f| format!("TAR@FAR={f:e}")));
            let rows = systems
                .iter()
                .map(|s| {
                    let r = &s.summary;
                    let mut row =
                        vec![s.name.clone(), r.n_genuine.to_string(), r.n_impostor.to_string(), format!("{:.6}", r.auc), format!("{:.6}", r.eer)];
                    row.extend(r.tar_at_far.iter().map(|t| format!("{:.6}", t.tar)));
                    row
                })
                .collect();
            let mut sections = vec![Section::new("Verification: ROC")
                .with_table(header, rows)
                .with_note("A threshold t accepts score ≥ t; TAR@FAR is the highest TAR among ROC points with FAR ≤ the target; EER = min over thresholds of max(FAR, FRR).")
                .with_chart(&roc_chart())?];
            for s in systems {
                sections.push(Section::new(format!("Score distributions: {}", s.name)).with_chart(&hist(s))?);
            }
            write_html(path, "visage evaluation report", &sections)?;
        }
        Ok(())
    }

    pub fn run_to(&self, out: &mut dyn Write) -> Result<(), CliError> {
        let systems = self.evaluate()?;
        self.charts(&systems)?;
        if self.json {
            if systems.len() == 1 {
                print_json(out, &systems[0].summary.report())?;
            } else {
                #[derive(Serialize)]
                struct Named<'a> {
                    name: &'a str,
                    #[serde(flatten)]
                    report: crate::roc::RocReport,
                }
                let all: Vec<Named> = systems.iter().map(|s| Named { name: &s.name, report: s.summary.report() }).collect();
                print_json(out, &all)?;
            }
        } else {
            for s in &systems {
                let r = &s.summary;
                let w = |out: &mut dyn Write, text: String| writeln!(out, "{text}").map_err(output_err("stdout"));
                w(out, format!("{}: {} genuine, {} impostor pairs", s.name, r.n_genuine, r.n_impostor))?;
                w(out, format!("  AUC {:.6}  EER {:.6} (threshold {:.6})", r.auc, r.eer, r.eer_threshold))?;
                for t in &r.tar_at_far {
                    w(out, format!("  TAR@FAR={:e}: {:.6} (threshold {:.6})", t.far, t.tar, t.threshold))?;
                }
            }
        }
        Ok(())
    }
}

/// Arguments of `visage eval clusters`.
#[derive(Debug, Args)]
pub struct ClustersArgs {
    /// True identities, one integer per line.
    #[arg(long)]
    pub truth: PathBuf,
    /// Predicted cluster labels, one integer per line (−1 = noise, each a singleton).
    #[arg(long)]
    pub pred: PathBuf,
    /// Print the contract JSON.
    #[arg(long)]
    pub json: bool,
}

impl ClustersArgs {
    pub fn run(&self) -> Result<(), CliError> {
        self.run_to(&mut std::io::stdout().lock())
    }

    pub fn run_to(&self, out: &mut dyn Write) -> Result<(), CliError> {
        let truth = read_labels(&self.truth)?;
        let pred = read_labels(&self.pred)?;
        if truth.len() != pred.len() {
            return Err(EvalError::content(
                &self.pred,
                format!("{} labels, but {} has {}: expected one label per face in both", pred.len(), self.truth.display(), truth.len()),
            )
            .into());
        }
        let scores = cluster_scores(&truth, &pred);
        if self.json {
            print_json(out, &scores)
        } else {
            writeln!(
                out,
                "pairwise P/R/F {:.6} {:.6} {:.6}\nB-cubed  P/R/F {:.6} {:.6} {:.6}\nNMI {:.6}",
                scores.pairwise_precision,
                scores.pairwise_recall,
                scores.pairwise_f,
                scores.bcubed_precision,
                scores.bcubed_recall,
                scores.bcubed_f,
                scores.nmi
            )
            .map_err(output_err("stdout"))
        }
    }
}

/// Clustering method of `visage cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterMethod {
    Dbscan,
    Ahc,
    Kmeans,
}

/// Arguments of `visage cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[arg(long, value_enum)]
    pub method: ClusterMethod,
    #[arg(long, value_enum, default_value_t = Metric::Cosine)]
    pub metric: Metric,
    /// Embeddings: `.npy` (2-D float32/float64) or CSV, one row per face.
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the labels, one integer per line (−1 = noise).
    #[arg(long)]
    pub output: PathBuf,
    /// DBSCAN neighbourhood radius (in the chosen metric).
    #[arg(long)]
    pub eps: Option<f64>,
    /// DBSCAN: neighbours (itself included) that make a core point.
    #[arg(long, default_value_t = 5)]
    pub min_samples: usize,
    /// AHC linkage.
    #[arg(long, value_enum, default_value_t = Linkage::Average)]
    pub linkage: Linkage,
    /// AHC: apply merges below this distance.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Number of clusters (k-means; AHC instead of --threshold).
    #[arg(long)]
    pub k: Option<usize>,
    /// k-means restarts (k-means++ seeding each time).
    #[arg(long, default_value_t = 10)]
    pub restarts: usize,
    /// k-means random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write, per cluster, members ordered by feature magnitude and the
    /// magnitude–centre-similarity correlation (MagFace) as JSON.
    #[arg(long)]
    pub magnitude_report: Option<PathBuf>,
}

impl ClusterArgs {
    pub fn run(&self) -> Result<(), CliError> {
        self.run_to(&mut std::io::stdout().lock())
    }

    /// Validated clustering of the input; returns the labels.
    pub fn cluster(&self, x: &ndarray::Array2<f64>) -> Result<Vec<i64>, CliError> {
        Ok(match self.method {
            ClusterMethod::Dbscan => {
                let eps = self.eps.ok_or_else(|| CliError::Usage("--method dbscan needs --eps".into()))?;
                if !(eps.is_finite() && eps >= 0.0) || self.min_samples == 0 {
                    return Err(CliError::Usage("--eps must be ≥ 0 and --min-samples ≥ 1".into()));
                }
                cluster::dbscan(x, &cluster::DbscanConfig { eps, min_samples: self.min_samples, metric: self.metric })
            }
            ClusterMethod::Ahc => {
                let stop = match (self.threshold, self.k) {
                    (Some(t), None) if t.is_finite() => AhcStop::DistanceThreshold(t),
                    (None, Some(k)) if k >= 1 => AhcStop::Clusters(k),
                    _ => return Err(CliError::Usage("--method ahc needs exactly one of --threshold T or --k K (≥ 1)".into())),
                };
                cluster::ahc(x, &cluster::AhcConfig { linkage: self.linkage, metric: self.metric, stop })
            }
            ClusterMethod::Kmeans => {
                let k = self.k.filter(|&k| k >= 1).ok_or_else(|| CliError::Usage("--method kmeans needs --k K (≥ 1)".into()))?;
                if k > x.nrows() {
                    return Err(CliError::Usage(format!("--k {k} exceeds the {} embeddings", x.nrows())));
                }
                let config = cluster::KmeansConfig { restarts: self.restarts.max(1), seed: self.seed, ..cluster::KmeansConfig::new(k, self.metric) };
                cluster::kmeans(x, &config).labels
            }
        })
    }

    pub fn run_to(&self, out: &mut dyn Write) -> Result<(), CliError> {
        let x = read_embeddings(&self.input)?;
        let labels = self.cluster(&x)?;
        write_labels(&self.output, &labels).map_err(|e| match e {
            EvalError::Io { source, .. } => CliError::Output { what: self.output.display().to_string(), source },
            other => other.into(),
        })?;
        let clusters = labels.iter().filter(|&&l| l >= 0).collect::<std::collections::HashSet<_>>().len();
        let noise = labels.iter().filter(|&&l| l < 0).count();
        writeln!(out, "{} faces → {clusters} clusters, {noise} noise; labels in {}", labels.len(), self.output.display())
            .map_err(output_err("stdout"))?;
        if let Some(path) = &self.magnitude_report {
            let report = cluster::magnitude::magnitude_report(&x, &labels);
            let text = serde_json::to_string_pretty(&report).expect("serialisable");
            std::fs::write(path, text).map_err(output_err(path.display().to_string()))?;
            if let Some(c) = report.overall_correlation {
                writeln!(out, "magnitude vs centre similarity: Pearson r = {c:.4} (details in {})", path.display()).map_err(output_err("stdout"))?;
            }
        }
        Ok(())
    }
}

/// Arguments of `visage eval erc`.
#[derive(Debug, Args)]
pub struct ErcArgs {
    /// CSV `score,label,<q>_1,<q>_2[,<r>_1,<r>_2 …]`: one quality measure per
    /// column pair (both faces of the pair); all measures go on one chart.
    #[arg(long)]
    pub pairs: PathBuf,
    /// FMR at which the threshold is fixed on the unfiltered set.
    #[arg(long, default_value_t = DEFAULT_TARGET_FMR)]
    pub target_fmr: f64,
    /// Print the curves as JSON.
    #[arg(long)]
    pub json: bool,
    /// ERC chart, `.svg` or `.png`.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Self-contained HTML report.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

impl ErcArgs {
    pub fn run(&self) -> Result<(), CliError> {
        self.run_to(&mut std::io::stdout().lock())
    }

    pub fn curves(&self) -> Result<Vec<ErcCurve>, CliError> {
        if !(self.target_fmr > 0.0 && self.target_fmr <= 1.0) {
            return Err(CliError::Usage(format!("--target-fmr {}: expected a rate in (0, 1]", self.target_fmr)));
        }
        let pairs = read_erc_csv(&self.pairs)?;
        let threshold = fixed_threshold(&pairs.scores, &pairs.is_same, self.target_fmr);
        let fractions = default_fractions();
        Ok(pairs.pair_quality.iter().map(|(name, q)| erc_curve(name, &pairs.scores, &pairs.is_same, q, threshold, &fractions)).collect())
    }

    pub fn run_to(&self, out: &mut dyn Write) -> Result<(), CliError> {
        let curves = self.curves()?;
        let chart = ErcChart { title: format!("Error versus reject (FMR = {:e})", self.target_fmr), curves: &curves };
        if let Some(path) = &self.plot {
            plot::save(&chart, path)?;
        }
        if let Some(path) = &self.report {
            let rows = curves
                .iter()
                .map(|c| {
                    let at = |r: f64| c.fractions.iter().position(|&f| (f - r).abs() < 1e-9).map(|i| format!("{:.4}", c.fnmr[i])).unwrap_or_default();
                    vec![c.name.clone(), format!("{:.6}", c.area), at(0.0), at(0.1), at(0.3), at(0.5)]
                })
                .collect();
            let header = ["quality", "area", "FNMR 0%", "FNMR 10%", "FNMR 30%", "FNMR 50%"].map(String::from).to_vec();
            let section = Section::new("Quality: error versus reject")
                .with_table(header, rows)
                .with_note("Pair quality = min of the two faces; threshold fixed on all pairs at the target FMR; the lowest-quality genuine pairs are rejected first.")
                .with_chart(&chart)?;
            write_html(path, "visage quality report", &[section])?;
        }
        if self.json {
            print_json(out, &serde_json::json!({ "target_fmr": self.target_fmr, "curves": curves }))
        } else {
            for c in &curves {
                writeln!(
                    out,
                    "{}: ERC area {:.6}, FNMR {:.4} → {:.4} (threshold {:.6})",
                    c.name,
                    c.area,
                    c.fnmr[0],
                    c.fnmr[c.fnmr.len() - 1],
                    c.threshold
                )
                .map_err(output_err("stdout"))?;
            }
            Ok(())
        }
    }
}

/// Arguments of `visage eval magnitudes`.
#[derive(Debug, Args)]
pub struct MagnitudesArgs {
    /// Embeddings (`.npy` or CSV), unnormalised: the L2 norm is the magnitude.
    #[arg(long)]
    pub input: PathBuf,
    /// Optional labels (one per row): histogram split into clustered faces and noise (−1).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Magnitude histogram, `.svg` or `.png`.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

impl MagnitudesArgs {
    pub fn run(&self) -> Result<(), CliError> {
        self.run_to(&mut std::io::stdout().lock())
    }

    pub fn run_to(&self, out: &mut dyn Write) -> Result<(), CliError> {
        let x = read_embeddings(&self.input)?;
        let mags = cluster::distance::row_norms(&x);
        let mut groups: Vec<(&str, Vec<f64>)> = vec![("all faces", mags.clone())];
        if let Some(path) = &self.labels {
            let labels = read_labels(path)?;
            if labels.len() != mags.len() {
                return Err(
                    EvalError::content(path, format!("{} labels for {} embeddings in {}", labels.len(), mags.len(), self.input.display())).into()
                );
            }
            let split = |noise: bool| mags.iter().zip(&labels).filter(|(_, &l)| (l < 0) == noise).map(|(&m, _)| m).collect::<Vec<f64>>();
            groups = vec![("clustered", split(false)), ("noise", split(true))];
        }
        if let Some(path) = &self.plot {
            let series: Vec<(&str, &[f64])> = groups.iter().map(|(n, v)| (*n, v.as_slice())).collect();
            plot::save(&HistogramChart::new("Feature magnitudes", "‖f‖₂", &series, 60), path)?;
        }
        let stats = |v: &[f64]| {
            let n = v.len().max(1) as f64;
            let mean = v.iter().sum::<f64>() / n;
            let var = v.iter().map(|m| (m - mean) * (m - mean)).sum::<f64>() / n;
            serde_json::json!({"count": v.len(), "mean": mean, "std": var.sqrt(),
                "min": v.iter().copied().fold(f64::INFINITY, f64::min), "max": v.iter().copied().fold(f64::NEG_INFINITY, f64::max)})
        };
        let summary: serde_json::Map<String, serde_json::Value> = groups.iter().map(|(n, v)| (n.to_string(), stats(v))).collect();
        if self.json {
            print_json(out, &summary)
        } else {
            writeln!(out, "{}", serde_json::to_string_pretty(&summary).expect("json")).map_err(output_err("stdout"))
        }
    }
}

/// Arguments of `visage eval verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Embeddings of the images (`.npy`/CSV), one row per image, in set order.
    #[arg(long)]
    pub embeddings: PathBuf,
    /// Embeddings of the horizontally flipped images (same rows); summed with `--embeddings`.
    #[arg(long)]
    pub flip_embeddings: Option<PathBuf>,
    /// insightface `.bin` set: pairs are rows (2i, 2i+1), flags from the pickle.
    #[arg(long, conflicts_with = "pairs", required_unless_present = "pairs")]
    pub bin: Option<PathBuf>,
    /// Pair list, lines `index_a index_b is_same` (0-based rows).
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Number of folds.
    #[arg(long, default_value_t = 10)]
    pub folds: usize,
    #[arg(long)]
    pub json: bool,
}

impl VerifyArgs {
    pub fn run(&self) -> Result<(), CliError> {
        self.run_to(&mut std::io::stdout().lock())
    }

    pub fn evaluate(&self) -> Result<crate::verification::VerificationResult, CliError> {
        use crate::verification::{combine_with_flip, kfold_accuracy, squared_distances, VerificationConfig};
        let emb = read_embeddings(&self.embeddings)?;
        let flip = match &self.flip_embeddings {
            Some(path) => {
                let f = read_embeddings(path)?;
                if f.dim() != emb.dim() {
                    return Err(
                        EvalError::content(path, format!("shape {:?} differs from {} {:?}", f.dim(), self.embeddings.display(), emb.dim())).into()
                    );
                }
                Some(f)
            }
            None => None,
        };
        let (pairs, issame, source) = match (&self.bin, &self.pairs) {
            (Some(bin), _) => {
                let set = crate::io::verification_bin::read_verification_bin(bin)?;
                (set.pairs(), set.issame, bin)
            }
            (None, Some(list)) => {
                let (p, s) = crate::io::pairs::read_pair_list(list)?;
                (p, s, list)
            }
            (None, None) => return Err(CliError::Usage("give --bin SET.bin or --pairs PAIRS.txt".into())),
        };
        if let Some(&(a, b)) = pairs.iter().find(|&&(a, b)| a.max(b) >= emb.nrows()) {
            return Err(EvalError::content(
                source,
                format!("pair ({a}, {b}) needs row {} but {} has {} rows", a.max(b), self.embeddings.display(), emb.nrows()),
            )
            .into());
        }
        if self.folds < 2 || self.folds > pairs.len() {
            return Err(CliError::Usage(format!(
                "--folds {}: expected 2 … {} (the number of pairs in {})",
                self.folds,
                pairs.len(),
                source.display()
            )));
        }
        let combined = combine_with_flip(&emb, flip.as_ref());
        let distances = squared_distances(&combined, &pairs);
        Ok(kfold_accuracy(&distances, &issame, &VerificationConfig { folds: self.folds, ..Default::default() }))
    }

    pub fn run_to(&self, out: &mut dyn Write) -> Result<(), CliError> {
        let r = self.evaluate()?;
        if self.json {
            print_json(out, &r)
        } else {
            writeln!(out, "accuracy {:.5} ± {:.5} ({} folds)", r.accuracy_mean, r.accuracy_std, r.fold_accuracy.len()).map_err(output_err("stdout"))
        }
    }
}

/// Arguments of `visage eval ijb`.
#[derive(Debug, Args)]
pub struct IjbArgs {
    /// insightface `meta/` folder holding `*_face_tid_mid.txt`,
    /// `*_template_pair_label.txt` and (for --detector-score) `*_name_5pts_score.txt`.
    #[arg(long)]
    pub meta: PathBuf,
    /// Face features, one row per line of `*_face_tid_mid.txt`, same order.
    #[arg(long)]
    pub features: PathBuf,
    /// Features of the flipped faces (flip test: added to --features).
    #[arg(long)]
    pub flip_features: Option<PathBuf>,
    /// Keep raw feature norms when pooling (quality-weighted by magnitude).
    #[arg(long)]
    pub norm_score: bool,
    /// Weight each face by its detector score.
    #[arg(long)]
    pub detector_score: bool,
    /// FAR targets for 1:1 TAR@FAR.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_FARS.to_vec())]
    pub far: Vec<f64>,
    /// 1:N gallery CSV (`TEMPLATE_ID`, `SUBJECT_ID` columns).
    #[arg(long, requires = "probe")]
    pub gallery: Option<PathBuf>,
    /// 1:N probe CSV (`TEMPLATE_ID`, `SUBJECT_ID` columns).
    #[arg(long, requires = "gallery")]
    pub probe: Option<PathBuf>,
    /// FPIR targets for TPIR@FPIR.
    #[arg(long, value_delimiter = ',', default_values_t = vec![0.01, 0.1])]
    pub fpir: Vec<f64>,
    /// 1:1 ROC chart, `.svg` or `.png`.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

impl IjbArgs {
    pub fn run(&self) -> Result<(), CliError> {
        self.run_to(&mut std::io::stdout().lock())
    }

    pub fn run_to(&self, out: &mut dyn Write) -> Result<(), CliError> {
        use crate::ijb::{identify, pair_scores, pool_templates, PoolingOptions};
        use crate::io::ijb_meta::*;
        check_fars(&self.far)?;
        check_fars(&self.fpir)?;
        let faces_path = find_meta_file(&self.meta, "_face_tid_mid.txt")?;
        let pairs_path = find_meta_file(&self.meta, "_template_pair_label.txt")?;
        let faces = read_face_tid_mid(&faces_path)?;
        let mut features = read_embeddings(&self.features)?;
        if features.nrows() != faces.len() {
            return Err(EvalError::content(
                &self.features,
                format!("{} rows, but {} lists {} faces", features.nrows(), faces_path.display(), faces.len()),
            )
            .into());
        }
        if let Some(path) = &self.flip_features {
            let flip = read_embeddings(path)?;
            if flip.dim() != features.dim() {
                return Err(EvalError::content(path, format!("shape {:?} differs from {:?} of --features", flip.dim(), features.dim())).into());
            }
            features += &flip;
        }
        let detector = if self.detector_score {
            let path = find_meta_file(&self.meta, "_name_5pts_score.txt")?;
            let scores = read_detector_scores(&path)?;
            if scores.len() != faces.len() {
                return Err(EvalError::content(&path, format!("{} lines for {} faces in {}", scores.len(), faces.len(), faces_path.display())).into());
            }
            if let Some((i, _)) = scores.iter().zip(&faces).enumerate().find(|(_, (s, f))| s.0 != f.image) {
                return Err(EvalError::parse(
                    &path,
                    i + 1,
                    format!("image `{}` where {} has `{}` (same order expected)", scores[i].0, faces_path.display(), faces[i].image),
                )
                .into());
            }
            Some(scores.into_iter().map(|s| s.1).collect::<Vec<f64>>())
        } else {
            None
        };
        let options = PoolingOptions { norm_score: self.norm_score, detector_score: self.detector_score };
        let templates = pool_templates(&features, &faces, detector.as_deref(), options);
        let pairs = read_template_pairs(&pairs_path)?;
        let scores = pair_scores(&templates, &pairs)
            .map_err(|t| EvalError::content(&pairs_path, format!("template {t} has no face in {}", faces_path.display())))?;
        scores.check_both_classes().map_err(|m| EvalError::content(&pairs_path, m))?;
        let summary = roc_summary(&scores, &self.far);
        if let Some(path) = &self.plot {
            plot::save(&RocChart { title: "IJB 1:1 verification".into(), systems: vec![("templates", summary.curve.as_slice())] }, path)?;
        }
        let identification = match (&self.gallery, &self.probe) {
            (Some(g), Some(p)) => {
                let gallery = read_template_subjects(g)?;
                let probes = read_template_subjects(p)?;
                let r = identify(&templates, &gallery, &probes, &self.fpir)
                    .map_err(|t| EvalError::content(g.parent().unwrap_or(g), format!("1:N template {t} has no face in {}", faces_path.display())))?;
                Some(r)
            }
            _ => None,
        };
        let report = serde_json::json!({
            "templates": templates.ids.len(),
            "verification": summary.report(),
            "identification": identification,
        });
        if self.json {
            print_json(out, &report)
        } else {
            let mut text = format!("{} templates, {} pairs: AUC {:.6}, EER {:.6}\n", templates.ids.len(), pairs.len(), summary.auc, summary.eer);
            for t in &summary.tar_at_far {
                text += &format!("  TAR@FAR={:e}: {:.6}\n", t.far, t.tar);
            }
            if let Some(r) = &identification {
                text += &format!("1:N: rank-1 {:.6}, rank-5 {:.6}\n", r.rank1, r.rank5);
                for t in &r.tpir_at_fpir {
                    text += &format!("  TPIR@FPIR={:e}: {:.6}\n", t.fpir, t.tpir);
                }
            }
            write!(out, "{text}").map_err(output_err("stdout"))
        }
    }
}
