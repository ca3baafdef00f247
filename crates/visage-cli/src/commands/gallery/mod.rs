//! `visage gallery …`: enrol people from photos, find them again (1:N), and
//! manage the gallery. `--gallery` is a directory (the embedded store) or a
//! `postgres://` URL (with the `postgres` feature). The library
//! (visage-gallery) does the work; these modules run the face pipeline and
//! print. One module per job: enrol, search (with the `search --json`
//! contract), list and remove, export and import, calibrate.

mod calibrate;
mod enrol;
mod export_import;
mod manage;
mod search;

use clap::{Args, Subcommand};
use visage_gallery::{DecisionThreshold, GalleryLocation, GalleryStore};

use super::Failure;
use calibrate::CalibrateArgs;
use enrol::EnrolArgs;
use export_import::{ExportArgs, ImportArgs};
use manage::{ListArgs, RemoveArgs};
use search::SearchArgs;

#[derive(Debug, Subcommand)]
pub enum GalleryCommand {
    /// Enrol the largest face of each photo as NAME (created if new); refuses
    /// photos without a usable face, each with its reason.
    Enrol(EnrolArgs),
    /// Every face of a photo searched in the gallery: top matches and a decision.
    Search(SearchArgs),
    /// The gallery's identities and settings.
    List(ListArgs),
    /// Delete an identity and its templates.
    Remove(RemoveArgs),
    /// Write the whole gallery as one JSON file (any backend can import it).
    Export(ExportArgs),
    /// Add the identities of an exported gallery (creating the gallery if needed).
    Import(ImportArgs),
    /// Set the decision threshold: calibrated for a target FAR on a scores
    /// file, or given.
    Calibrate(CalibrateArgs),
}

impl GalleryCommand {
    pub fn run(&self) -> Result<(), Failure> {
        match self {
            Self::Enrol(args) => args.run(),
            Self::Search(args) => args.run(),
            Self::List(args) => args.run(),
            Self::Remove(args) => args.run(),
            Self::Export(args) => args.run(),
            Self::Import(args) => args.run(),
            Self::Calibrate(args) => args.run(),
        }
    }
}

#[derive(Debug, Args)]
pub struct GalleryArg {
    /// The gallery: a directory (created on first enrolment) or a postgres:// URL.
    #[arg(long, value_name = "DIR|URL")]
    gallery: String,
}

impl GalleryArg {
    fn location(&self) -> GalleryLocation {
        GalleryLocation::parse(&self.gallery)
    }

    fn open(&self, read_only: bool) -> Result<Box<dyn GalleryStore>, Failure> {
        self.location().open(read_only).map_err(Failure::from)
    }
}

/// Where the threshold came from, in words, as `list` and `calibrate` print it.
fn describe_origin(threshold: &DecisionThreshold) -> String {
    match &threshold.origin {
        visage_gallery::ThresholdOrigin::Recognizer { recognizer } => format!("same_person_cosine of {recognizer}"),
        visage_gallery::ThresholdOrigin::Manual => "set by hand".into(),
        visage_gallery::ThresholdOrigin::Calibrated { scores, target_far, achieved_far, tar, impostor_pairs, .. } => {
            format!("FAR {achieved_far:.2e} ≤ {target_far:.0e}, TAR {tar:.4} on {scores}, {impostor_pairs} impostor pairs")
        }
    }
}
