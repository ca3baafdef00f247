//! `visage gallery calibrate`: the decision threshold, calibrated for a target
//! false-accept rate on a scores file or given by hand.

use std::path::PathBuf;

use clap::Args;
use visage_gallery::DecisionThreshold;

use super::{describe_origin, GalleryArg};
use crate::commands::Failure;

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    gallery: GalleryArg,
    /// Scores CSV (`score,label`, label 1 = same person) from the gallery's recogniser.
    #[arg(long, value_name = "S.csv", requires = "far", conflicts_with = "threshold")]
    scores: Option<PathBuf>,
    /// Target false-accept rate for --scores.
    #[arg(long)]
    far: Option<f64>,
    /// Set this cosine threshold instead of calibrating.
    #[arg(long, value_name = "COSINE")]
    threshold: Option<f32>,
}

impl CalibrateArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let threshold = match (&self.scores, self.far, self.threshold) {
            (Some(scores), Some(far), None) => DecisionThreshold::calibrate_from_file(scores, far),
            (None, None, Some(cosine)) => DecisionThreshold::manual(cosine),
            _ => return Err(Failure::bad_input("give --scores S.csv --far F, or --threshold COSINE")),
        }?;
        let store = self.gallery.open(false)?;
        store.set_threshold(threshold.clone())?;
        println!("{}: threshold {} ({})", store.location(), threshold.cosine, describe_origin(&threshold));
        Ok(())
    }
}
