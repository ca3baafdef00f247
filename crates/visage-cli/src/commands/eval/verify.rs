//! `visage eval verify`: insightface's verification protocol (10-fold
//! accuracy) on embeddings, with pairs from a `.bin` set or a pair list.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use visage_eval::io::embeddings::read_embeddings;
use visage_eval::io::pairs::read_pair_list;
use visage_eval::io::verification_bin::read_verification_bin;
use visage_eval::verification::{evaluate_pairs, VerificationConfig, VerificationResult};
use visage_eval::EvalError;

use super::{input, print_json, print_line};
use crate::commands::Failure;

/// Arguments of `visage eval verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Embeddings of the images (`.npy`/CSV), one row per image, in set order.
    #[arg(long)]
    embeddings: PathBuf,
    /// Embeddings of the horizontally flipped images (same rows); summed with `--embeddings`.
    #[arg(long)]
    flip_embeddings: Option<PathBuf>,
    /// insightface `.bin` set: pairs are rows (2i, 2i+1), flags from the pickle.
    #[arg(long, conflicts_with = "pairs", required_unless_present = "pairs")]
    bin: Option<PathBuf>,
    /// Pair list, lines `index_a index_b is_same` (0-based rows).
    #[arg(long)]
    pairs: Option<PathBuf>,
    /// Number of folds.
    #[arg(long, default_value_t = 10)]
    folds: usize,
    #[arg(long)]
    json: bool,
}

impl VerifyArgs {
    pub fn run(&self, out: &mut dyn Write) -> Result<(), Failure> {
        let r = self.evaluate()?;
        if self.json {
            print_json(out, &r)
        } else {
            print_line(out, format!("accuracy {:.5} ± {:.5} ({} folds)", r.accuracy_mean, r.accuracy_std, r.fold_accuracy.len()))
        }
    }

    fn evaluate(&self) -> Result<VerificationResult, Failure> {
        let emb = read_embeddings(&self.embeddings).map_err(input)?;
        let flip = match &self.flip_embeddings {
            Some(path) => {
                let f = read_embeddings(path).map_err(input)?;
                if f.dim() != emb.dim() {
                    let message = format!("shape {:?} differs from {} {:?}", f.dim(), self.embeddings.display(), emb.dim());
                    return Err(input(EvalError::content(path, message)));
                }
                Some(f)
            }
            None => None,
        };
        let (pairs, issame, source) = match (&self.bin, &self.pairs) {
            (Some(bin), _) => {
                let set = read_verification_bin(bin).map_err(input)?;
                (set.pairs(), set.issame, bin)
            }
            (None, Some(list)) => {
                let (p, s) = read_pair_list(list).map_err(input)?;
                (p, s, list)
            }
            // not reached: clap refuses a command line with neither
            (None, None) => return Err(Failure::bad_input("give --bin SET.bin or --pairs PAIRS.txt")),
        };
        if let Some(&(a, b)) = pairs.iter().find(|&&(a, b)| a.max(b) >= emb.nrows()) {
            let message = format!("pair ({a}, {b}) needs row {} but {} has {} rows", a.max(b), self.embeddings.display(), emb.nrows());
            return Err(input(EvalError::content(source, message)));
        }
        if self.folds < 2 || self.folds > pairs.len() {
            return Err(Failure::bad_input(format!(
                "--folds {}: expected 2 … {} (the number of pairs in {})",
                self.folds,
                pairs.len(),
                source.display()
            )));
        }
        Ok(evaluate_pairs(&emb, flip.as_ref(), &pairs, &issame, &VerificationConfig { folds: self.folds, ..Default::default() }))
    }
}
