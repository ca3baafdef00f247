//! `visage quality INPUT…`: every face ranked by its feature magnitude
//! (MagFace's quality score), best first, with a montage to look at.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use visage_analyze::montage::{montage, Tile};
use visage_analyze::FaceCollection;

use super::face_models::{expand_inputs, progress_bar, FaceModelArgs, Tally};
use super::Failure;

#[derive(Debug, Args)]
pub struct QualityArgs {
    /// Photos, or folders of photos (searched recursively).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Write the faces best → worst as one captioned PNG montage.
    #[arg(long, value_name = "OUT.png")]
    montage: Option<PathBuf>,
    /// Faces per montage row.
    #[arg(long, default_value_t = 8)]
    columns: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    models: FaceModelArgs,
}

#[derive(Serialize)]
struct RankedFace<'a> {
    rank: usize,
    file: &'a str,
    face: usize,
    magnitude: f32,
    det_score: Option<f32>,
    bbox: [f32; 4],
}

impl QualityArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let files = expand_inputs(&self.inputs)?;
        let mut pipeline = self.models.pipeline(self.montage.is_some())?;
        let mut tally = Tally::default();
        let bar = progress_bar(files.len() as u64, "scoring");
        let collection = FaceCollection::gather(&mut pipeline, &files, |outcome| {
            bar.suspend(|| tally.record(outcome));
            bar.inc(1);
        });
        bar.finish_and_clear();
        let faces = &collection.faces;
        let mut order: Vec<usize> = (0..faces.len()).collect();
        order.sort_by(|&a, &b| faces[b].magnitude.total_cmp(&faces[a].magnitude));

        if !self.json {
            println!("rank\tmagnitude\tdet_score\tfile\tface");
        }
        for (rank, &i) in order.iter().enumerate() {
            let face = &faces[i];
            let file = face.file.display().to_string();
            let row = RankedFace {
                rank: rank + 1,
                file: &file,
                face: face.face_in_photo,
                magnitude: face.magnitude,
                det_score: face.det_score,
                bbox: face.bbox,
            };
            if self.json {
                println!("{}", serde_json::to_string(&row).expect("serialisable"));
            } else {
                let score = row.det_score.map(|s| format!("{s:.3}")).unwrap_or_else(|| "-".into());
                println!("{}\t{:.3}\t{score}\t{file}\t{}", row.rank, row.magnitude, row.face);
            }
        }
        if let (Some(path), false) = (&self.montage, order.is_empty()) {
            let tiles: Vec<Tile<'_>> = order
                .iter()
                .enumerate()
                .filter_map(|(rank, &i)| {
                    let crop = faces[i].crop.as_ref()?;
                    Some(Tile { crop, caption: format!("#{} {:.2}", rank + 1, faces[i].magnitude), flagged: false })
                })
                .collect();
            let picture = montage(&tiles, self.columns).map_err(|e| Failure::other(e.to_string()))?;
            visage_analyze::write_png(&picture, path).map_err(Failure::from)?;
            eprintln!("visage: montage of {} faces, best → worst: {}", tiles.len(), path.display());
        }
        tally.finish(self.models.detector.strict)
    }
}
