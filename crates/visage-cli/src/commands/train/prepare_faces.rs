//! `visage train prepare-faces ALIGNED --out DIR`: a photo split of aligned
//! face crops into training and held-out image folders.

use std::path::PathBuf;

use clap::Args;
use visage_data::split::FaceSplit;

use crate::commands::Failure;

#[derive(Debug, Args)]
pub struct PrepareFacesArgs {
    /// Aligned 112×112 crops, one sub-folder per identity (e.g. shared/data/reference/aligned).
    #[arg(value_name = "ALIGNED")]
    aligned: PathBuf,
    /// Gets `train/<identity>/` and `heldout/<identity>/` (every third crop of an
    /// identity with at least three is held out).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// No degraded training copies (by default each training crop is also
    /// written once blurred, noised or occluded, as the MagFace fine-tune uses).
    #[arg(long)]
    clean_only: bool,
    /// Seeds the degradation severities.
    #[arg(long, default_value_t = 2048)]
    seed: u64,
}

impl PrepareFacesArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let split = FaceSplit::prepare_with(&self.aligned, &self.out, self.seed, !self.clean_only).map_err(Failure::from)?;
        eprintln!(
            "visage: {} identities; {} training crops{} → {}; {} held out → {}",
            split.class_names.len(),
            split.gallery.len(),
            if self.clean_only { "" } else { " (+ one degraded copy each)" },
            split.train_dir.display(),
            split.heldout.len(),
            split.heldout_dir.display()
        );
        Ok(())
    }
}
