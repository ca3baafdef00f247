//! `visage gallery search`: every face of a photo looked up in the gallery.
//!
//! Contract used by acceptance tests: `search --json` prints
//! `{"faces": [{"box": [x1, y1, x2, y2], "quality": f, "decision": "NAME" | null,
//! "matches": [{"identity": "NAME", "score": f}, …]}]}` for every face found.

use std::path::PathBuf;

use clap::Args;
use visage_gallery::{FaceMatches, GallerySetup, HnswParams, SearchResponse};
use visage_infer::InferError;

use super::GalleryArg;
use crate::commands::face_models::{DetectorArgs, RecognizerArgs};
use crate::commands::Failure;

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The photo to search: every face in it is looked up.
    image: PathBuf,
    #[command(flatten)]
    gallery: GalleryArg,
    /// Matches per face.
    #[arg(short = 'k', long = "top", default_value_t = 5)]
    k: usize,
    /// Print JSON (the contract in this module's docs).
    #[arg(long)]
    json: bool,
    /// Search with the approximate HNSW index instead of exactly (large galleries).
    #[arg(long)]
    approximate: bool,
    #[command(flatten)]
    recognizer: RecognizerArgs,
    #[command(flatten)]
    detector: DetectorArgs,
}

impl SearchArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let store = self.gallery.open(true)?;
        let recognizer_config = self.recognizer.config()?;
        let config = GallerySetup::new(recognizer_config.name.clone(), recognizer_config.same_person_cosine).check(store.as_ref())?;
        let mut pipeline = self.detector.pipeline(&self.recognizer, false, false)?;
        let mut result = None;
        pipeline.run(std::slice::from_ref(&self.image), |outcome| result = Some(outcome.result));
        let faces = match result.expect("one outcome per input") {
            Ok(photo) => photo.faces,
            Err(InferError::NoFace { .. }) => Vec::new(),
            Err(e) => return Err(Failure::bad_input(e.to_string())),
        };
        let queries: Vec<&[f32]> = faces.iter().map(|f| f.embedding.embedding.as_slice()).collect();
        let found = if self.approximate {
            store.search_approximate(&queries, self.k, HnswParams { ef_search: self.k.max(100), ..HnswParams::default() })
        } else {
            store.search(&queries, self.k)
        }?;
        let json = SearchResponse {
            faces: faces
                .iter()
                .zip(found)
                .map(|(face, matches)| FaceMatches::new(face.bbox, face.embedding.norm, matches, &config.threshold))
                .collect(),
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&json).expect("serialisable"));
            return Ok(());
        }
        if json.faces.is_empty() {
            println!("{}: no face found", self.image.display());
        }
        for (i, face) in json.faces.iter().enumerate() {
            let [x1, y1, x2, y2] = face.bbox;
            let decision = face.decision.as_deref().unwrap_or("unknown");
            println!("face {i} [{x1:.0}, {y1:.0}, {x2:.0}, {y2:.0}] quality {:.3} → {decision}", face.quality);
            for m in &face.matches {
                let mark = if config.threshold.accepts(m.score) { "≥" } else { "<" };
                println!("  {:.4} {mark} {:.4}  {}", m.score, config.threshold.cosine, m.name);
            }
        }
        Ok(())
    }
}
