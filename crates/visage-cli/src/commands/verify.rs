//! `visage verify A.jpg B.jpg`: are these the same person? The largest face
//! of each photo is embedded; their cosine similarity is compared with the
//! recogniser's threshold; each face's magnitude says how far to trust it.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use visage_infer::PhotoFace;

use super::face_models::{largest_face, same_person_cosine, FaceModelArgs};
use super::Failure;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// First photo.
    a: PathBuf,
    /// Second photo.
    b: PathBuf,
    /// Same person at or above this cosine similarity [default: the
    /// recogniser config's `same_person_cosine`].
    #[arg(long, value_name = "COSINE")]
    threshold: Option<f32>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    models: FaceModelArgs,
}

#[derive(Serialize)]
struct FaceJson {
    file: String,
    faces_in_photo: usize,
    bbox: [f32; 4],
    det_score: Option<f32>,
    magnitude: f32,
}

#[derive(Serialize)]
struct VerdictJson {
    cosine: f32,
    threshold: f32,
    same_person: bool,
    faces: [FaceJson; 2],
}

impl VerifyArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let config = self.models.recognizer.config()?;
        let threshold = same_person_cosine(self.threshold, &config)?;
        let mut pipeline = self.models.pipeline(false)?;
        let files = [self.a.clone(), self.b.clone()];
        let mut found: [Option<(usize, PhotoFace)>; 2] = [None, None];
        let mut errors = Vec::new();
        pipeline.run(&files, |outcome| match outcome.result {
            Ok(photo) => {
                let count = photo.faces.len();
                let largest = largest_face(photo.faces);
                found[outcome.index] = largest.map(|face| (count, face));
            }
            Err(e) => errors.push(e.to_string()),
        });
        if !errors.is_empty() {
            return Err(Failure::bad_input(errors.join("\n")));
        }
        let [Some((count_a, a)), Some((count_b, b))] = found else {
            return Err(Failure::other("a photo gave no face and no error (a bug)"));
        };
        let cosine = a.embedding.cosine(&b.embedding);
        let verdict = VerdictJson {
            cosine,
            threshold,
            same_person: cosine >= threshold,
            faces: [face_json(&self.a, count_a, &a), face_json(&self.b, count_b, &b)],
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&verdict).expect("serialisable"));
        } else {
            let word = if verdict.same_person { "same person" } else { "different people" };
            println!("cosine similarity {cosine:.4} → {word} (threshold {threshold})");
            for face in &verdict.faces {
                let note = if face.faces_in_photo > 1 { format!(" (largest of {} faces)", face.faces_in_photo) } else { String::new() };
                println!("  {}: quality ‖x‖ = {:.2}{note}", face.file, face.magnitude);
            }
        }
        Ok(())
    }
}

fn face_json(path: &std::path::Path, faces_in_photo: usize, face: &PhotoFace) -> FaceJson {
    FaceJson { file: path.display().to_string(), faces_in_photo, bbox: face.bbox, det_score: face.det_score, magnitude: face.embedding.norm }
}
