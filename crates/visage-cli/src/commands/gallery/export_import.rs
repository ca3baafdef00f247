//! `visage gallery export` and `visage gallery import`: the whole gallery as
//! one JSON file, and adding such a file's identities to any gallery.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use visage_gallery::{GalleryExport, ImportConflict};

use super::GalleryArg;
use crate::commands::Failure;

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    gallery: GalleryArg,
    /// The JSON file to write (`-`: standard output).
    #[arg(long, value_name = "FILE.json")]
    out: PathBuf,
}

impl ExportArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let store = self.gallery.open(true)?;
        let export = store.export()?;
        let text = serde_json::to_string(&export).expect("serialisable");
        if self.out == Path::new("-") {
            println!("{text}");
        } else {
            std::fs::write(&self.out, text).map_err(|e| Failure::other(format!("{}: {e}", self.out.display())))?;
            eprintln!("visage: exported {} identities to {}", export.identities.len(), self.out.display());
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OnConflict {
    Fail,
    Skip,
    Merge,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A file written by `visage gallery export`.
    file: PathBuf,
    #[command(flatten)]
    gallery: GalleryArg,
    /// When an imported name exists: refuse the whole import, skip it, or add its templates.
    #[arg(long, value_enum, default_value = "fail")]
    on_conflict: OnConflict,
}

impl ImportArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let bytes = std::fs::read(&self.file).map_err(|e| Failure::bad_input(format!("{}: {e}", self.file.display())))?;
        // The gallery's own reader: exports of galleries written before
        // metadata depth was bounded nest deeper than serde_json's default.
        let export =
            GalleryExport::from_json(&bytes).map_err(|e| Failure::bad_input(format!("{}: not a gallery export: {e}", self.file.display())))?;
        let location = self.gallery.location();
        let store = if location.exists()? { location.open(false)? } else { location.create(export.config.clone())? };
        let on_conflict = match self.on_conflict {
            OnConflict::Fail => ImportConflict::Fail,
            OnConflict::Skip => ImportConflict::Skip,
            OnConflict::Merge => ImportConflict::Merge,
        };
        let report = store.import(&export, on_conflict).map_err(|e| {
            let failure = Failure::from(e);
            Failure { message: format!("{}: {}", self.file.display(), failure.message), ..failure }
        })?;
        println!(
            "imported {} identities ({} templates) into {}: {} created, {} merged, {} skipped",
            report.created + report.merged,
            report.templates,
            store.location(),
            report.created,
            report.merged,
            report.skipped
        );
        Ok(())
    }
}
