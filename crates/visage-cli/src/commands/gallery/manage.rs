//! `visage gallery list` and `visage gallery remove`: what the gallery holds,
//! and deleting an identity.

use clap::Args;
use serde::Serialize;
use visage_gallery::GalleryConfig;

use super::{describe_origin, GalleryArg};
use crate::commands::Failure;

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    gallery: GalleryArg,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct ListJson {
    config: GalleryConfig,
    identities: Vec<visage_gallery::IdentitySummary>,
}

impl ListArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let store = self.gallery.open(true)?;
        let config = store.config()?;
        let identities = store.list()?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&ListJson { config, identities }).expect("serialisable"));
            return Ok(());
        }
        println!(
            "{}: {} identities, recogniser {} ({}-d), threshold {} ({})",
            store.location(),
            identities.len(),
            config.recognizer,
            config.embedding_size,
            config.threshold.cosine,
            describe_origin(&config.threshold)
        );
        println!("id\ttemplates\tbest_quality\tname");
        for identity in identities {
            println!("{}\t{}\t{:.3}\t{}", identity.id, identity.templates, identity.best_quality, identity.name);
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The identity to delete.
    name: String,
    #[command(flatten)]
    gallery: GalleryArg,
}

impl RemoveArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let store = self.gallery.open(false)?;
        let removed = store.remove(&self.name)?;
        println!("removed {} ({} templates)", removed.name, removed.templates);
        Ok(())
    }
}
