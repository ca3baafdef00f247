//! `visage eval clusters`: predicted cluster labels against the true
//! identities (pairwise and B-cubed precision/recall/F, NMI).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use visage_eval::io::labels::read_labels;
use visage_eval::metrics::cluster_scores;
use visage_eval::EvalError;

use super::{input, print_json, print_line};
use crate::commands::Failure;

/// Arguments of `visage eval clusters`.
#[derive(Debug, Args)]
pub struct ClustersArgs {
    /// True identities, one integer per line.
    #[arg(long)]
    truth: PathBuf,
    /// Predicted cluster labels, one integer per line (−1 = noise, each a singleton).
    #[arg(long)]
    pred: PathBuf,
    /// Print the contract JSON.
    #[arg(long)]
    json: bool,
}

impl ClustersArgs {
    pub fn run(&self, out: &mut dyn Write) -> Result<(), Failure> {
        let truth = read_labels(&self.truth).map_err(input)?;
        let pred = read_labels(&self.pred).map_err(input)?;
        if truth.len() != pred.len() {
            let message = format!("{} labels, but {} has {}: expected one label per face in both", pred.len(), self.truth.display(), truth.len());
            return Err(input(EvalError::content(&self.pred, message)));
        }
        let scores = cluster_scores(&truth, &pred);
        if self.json {
            print_json(out, &scores)
        } else {
            print_line(
                out,
                format!(
                    "pairwise P/R/F {:.6} {:.6} {:.6}\nB-cubed  P/R/F {:.6} {:.6} {:.6}\nNMI {:.6}",
                    scores.pairwise_precision,
                    scores.pairwise_recall,
                    scores.pairwise_f,
                    scores.bcubed_precision,
                    scores.bcubed_recall,
                    scores.bcubed_f,
                    scores.nmi
                ),
            )
        }
    }
}
