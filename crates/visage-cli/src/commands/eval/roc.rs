//! `visage eval roc`: ROC, AUC, EER and TAR@FAR of one or more scores CSVs,
//! with the ROC chart, a score histogram and the HTML report on request.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use visage_eval::plot::{self, histogram::HistogramChart, roc::RocChart};
use visage_eval::report::{write_html, Section};
use visage_eval::roc::{evaluate_score_files, NamedRoc, RocReport, DEFAULT_FARS};

use super::{check_fars, input, print_json, print_line};
use crate::commands::Failure;

/// Arguments of `visage eval roc`.
#[derive(Debug, Args)]
pub struct RocArgs {
    /// Scores CSV with header `score,label`. Repeat to compare systems
    /// (plots and report); `--json` then prints one object per file.
    #[arg(long, required = true, num_args = 1..)]
    scores: Vec<PathBuf>,
    /// Display names of the systems, in `--scores` order (default: file stems).
    #[arg(long, value_delimiter = ',')]
    names: Vec<String>,
    /// FAR targets for TAR@FAR, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_FARS.to_vec())]
    far: Vec<f64>,
    /// Print the contract JSON `{"auc", "eer", "tar_at_far": [{"far", "tar"}]}`.
    #[arg(long)]
    json: bool,
    /// ROC chart of all systems (log-FAR axis), `.svg` or `.png`.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Genuine/impostor score histogram of the first system, `.svg` or `.png`.
    #[arg(long)]
    hist: Option<PathBuf>,
    /// Self-contained HTML report (tables, ROC, histograms).
    #[arg(long)]
    report: Option<PathBuf>,
}

/// `--names`, else each file's stem; as many names as files.
fn system_names(paths: &[PathBuf], names: &[String]) -> Result<Vec<String>, Failure> {
    if !names.is_empty() && names.len() != paths.len() {
        return Err(Failure::bad_input(format!("--names has {} entries for {} score files", names.len(), paths.len())));
    }
    Ok(paths.iter().enumerate().map(|(i, p)| names.get(i).cloned().unwrap_or_else(|| file_stem(p))).collect())
}

fn file_stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

impl RocArgs {
    pub fn run(&self, out: &mut dyn Write) -> Result<(), Failure> {
        check_fars(&self.far)?;
        let names = system_names(&self.scores, &self.names)?;
        let systems: Vec<(String, PathBuf)> = names.into_iter().zip(self.scores.iter().cloned()).collect();
        // the scores are kept only when a histogram will be drawn
        let keep_scores = self.hist.is_some() || self.report.is_some();
        let systems = evaluate_score_files(&systems, &self.far, keep_scores).map_err(input)?;
        self.charts(&systems).map_err(input)?;
        if self.json {
            if systems.len() == 1 {
                print_json(out, &systems[0].summary.report())
            } else {
                #[derive(Serialize)]
                struct Named<'a> {
                    name: &'a str,
                    #[serde(flatten)]
                    report: RocReport,
                }
                let all: Vec<Named> = systems.iter().map(|s| Named { name: &s.name, report: s.summary.report() }).collect();
                print_json(out, &all)
            }
        } else {
            for s in &systems {
                let r = &s.summary;
                print_line(out, format!("{}: {} genuine, {} impostor pairs", s.name, r.n_genuine, r.n_impostor))?;
                print_line(out, format!("  AUC {:.6}  EER {:.6} (threshold {:.6})", r.auc, r.eer, r.eer_threshold))?;
                for t in &r.tar_at_far {
                    print_line(out, format!("  TAR@FAR={:e}: {:.6} (threshold {:.6})", t.far, t.tar, t.threshold))?;
                }
            }
            Ok(())
        }
    }

    /// The `--plot`, `--hist` and `--report` files that were asked for.
    fn charts(&self, systems: &[NamedRoc]) -> visage_eval::Result<()> {
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
}
