//! `visage eval magnitudes`: feature-magnitude (L2 norm) statistics of an
//! embedding matrix, split into clustered faces and noise when labels are
//! given, and their histogram.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use visage_eval::cluster::distance::row_norms;
use visage_eval::cluster::magnitude::{magnitude_stats, split_by_noise};
use visage_eval::io::embeddings::read_embeddings;
use visage_eval::io::labels::read_labels;
use visage_eval::plot::{self, histogram::HistogramChart};
use visage_eval::EvalError;

use super::{input, print_json, print_line};
use crate::commands::Failure;

/// Arguments of `visage eval magnitudes`.
#[derive(Debug, Args)]
pub struct MagnitudesArgs {
    /// Embeddings (`.npy` or CSV), unnormalised: the L2 norm is the magnitude.
    #[arg(long)]
    input: PathBuf,
    /// Optional labels (one per row): histogram split into clustered faces and noise (−1).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Magnitude histogram, `.svg` or `.png`.
    #[arg(long)]
    plot: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

impl MagnitudesArgs {
    pub fn run(&self, out: &mut dyn Write) -> Result<(), Failure> {
        let x = read_embeddings(&self.input).map_err(input)?;
        let mags = row_norms(&x);
        let groups: Vec<(&str, Vec<f64>)> = match &self.labels {
            None => vec![("all faces", mags)],
            Some(path) => {
                let labels = read_labels(path).map_err(input)?;
                if labels.len() != mags.len() {
                    let message = format!("{} labels for {} embeddings in {}", labels.len(), mags.len(), self.input.display());
                    return Err(input(EvalError::content(path, message)));
                }
                let (clustered, noise) = split_by_noise(&mags, &labels);
                vec![("clustered", clustered), ("noise", noise)]
            }
        };
        if let Some(path) = &self.plot {
            let series: Vec<(&str, &[f64])> = groups.iter().map(|(n, v)| (*n, v.as_slice())).collect();
            plot::save(&HistogramChart::new("Feature magnitudes", "‖f‖₂", &series, 60), path).map_err(input)?;
        }
        // a JSON object keyed by group (serde_json's map: keys sorted)
        let summary: serde_json::Map<String, serde_json::Value> = groups
            .iter()
            .map(|(name, values)| {
                let s = magnitude_stats(values);
                (name.to_string(), serde_json::json!({"count": s.count, "mean": s.mean, "std": s.std, "min": s.min, "max": s.max}))
            })
            .collect();
        if self.json {
            print_json(out, &summary)
        } else {
            print_line(out, serde_json::to_string_pretty(&summary).expect("json"))
        }
    }
}
