//! `visage models …`: the face models visage knows (detectors and
//! recognisers), where each comes from, its licence and hash, and whether
//! its file is at hand: bundled in the binary, found along the search path,
//! or missing.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use visage_infer::{CatalogEntry, ModelStatus};

use super::face_models::registry;
use super::Failure;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every known detector and recogniser: name, kind, whether its file is
    /// present (bundled in this binary, found in --models-dir or
    /// $VISAGE_MODELS_DIR, or missing), its licence, source and sha256.
    ///
    /// Example: visage models list --json
    List(ListArgs),
}

impl ModelsCommand {
    pub fn run(&self) -> Result<(), Failure> {
        match self {
            Self::List(args) => args.run(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Folder searched first for model files [default: the folders of $VISAGE_MODELS_DIR].
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// One JSON object: `{"bundled_dir", "search_dirs", "models": [{name, kind, file,
    /// sha256, source, licence, bundled, status, location}]}`.
    #[arg(long)]
    json: bool,
}

fn status_word(entry: &CatalogEntry) -> &'static str {
    match (entry.status, entry.bundled) {
        (ModelStatus::Present, true) => "bundled",
        (ModelStatus::Present, false) => "present",
        (ModelStatus::HashMismatch, _) => "WRONG HASH",
        (ModelStatus::Missing, _) => "missing",
    }
}

impl ListArgs {
    fn run(&self) -> Result<(), Failure> {
        let registry = registry(self.models_dir.as_deref())?;
        let models = registry.catalog();
        if self.json {
            let report = serde_json::json!({
                "bundled_dir": registry.configs_dir,
                "search_dirs": registry.search_dirs,
                "models": models,
            });
            println!("{}", serde_json::to_string_pretty(&report).expect("plain JSON"));
            return Ok(());
        }
        let width = models.iter().map(|m| m.name.len()).max().unwrap_or(4);
        println!("{:<width$}  {:<10}  {:<10}  licence", "name", "kind", "status");
        for model in &models {
            let kind = format!("{:?}", model.kind).to_lowercase();
            println!("{:<width$}  {kind:<10}  {:<10}  {}", model.name, status_word(model), model.licence.as_deref().unwrap_or("not stated"));
            let sha = model.sha256.as_deref().unwrap_or("not pinned");
            println!("{:<width$}  file {} (sha256 {sha})", "", model.file.display());
            if let Some(source) = &model.source {
                println!("{:<width$}  from {source}", "");
            }
            if let Some(location) = &model.location {
                println!("{:<width$}  at {}", "", location.display());
            }
        }
        let searched: Vec<String> = registry.search_dirs.iter().map(|d| d.display().to_string()).collect();
        println!("\nmodel files are searched in: {}", searched.join(", "));
        println!("(--models-dir or $VISAGE_MODELS_DIR first; the last folder holds the models bundled in this binary)");
        Ok(())
    }
}
