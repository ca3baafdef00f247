//! `visage gallery enrol`: the largest face of each photo becomes a template
//! of the named identity; photos without a usable face are refused with a reason.

use std::path::{Path, PathBuf};

use clap::Args;
use visage_gallery::{FaceSample, GallerySetup, QualityPolicy, Refusal, RefusedFace};
use visage_infer::{InferError, PhotoFace};

use super::GalleryArg;
use crate::commands::face_models::{expand_inputs, largest_face, DetectorArgs, RecognizerArgs};
use crate::commands::Failure;

#[derive(Debug, Args)]
pub struct EnrolArgs {
    /// The person's name (created if new, else the faces are added).
    name: String,
    /// Photos of the person (the largest face of each is enrolled), or folders
    /// of photos. With --strict, any refused photo makes the exit code 2.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    gallery: GalleryArg,
    /// JSON object stored with the identity (replaces what it had).
    #[arg(long, value_name = "JSON")]
    metadata: Option<String>,
    /// When the gallery is created: refuse faces whose magnitude ‖x‖ is below
    /// this (the scale depends on the recogniser; none by default).
    #[arg(long, value_name = "MAGNITUDE")]
    min_quality: Option<f32>,
    /// When the gallery is created: refuse faces narrower or shorter than this (pixels).
    #[arg(long, value_name = "PX", default_value_t = QualityPolicy::default().min_face_px)]
    min_face_px: f32,
    /// When the gallery is created: the decision threshold [default: the
    /// recogniser config's same_person_cosine].
    #[arg(long, value_name = "COSINE")]
    threshold: Option<f32>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    recognizer: RecognizerArgs,
    #[command(flatten)]
    detector: DetectorArgs,
}

impl EnrolArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let metadata = match &self.metadata {
            Some(text) => {
                Some(serde_json::from_str::<serde_json::Value>(text).map_err(|e| Failure::bad_input(format!("--metadata: not JSON: {e}")))?)
            }
            None => None,
        };
        visage_gallery::model::check_name(&self.name)?;
        let location = self.gallery.location();
        let recognizer_config = self.recognizer.config()?;
        let setup = GallerySetup {
            recognizer: recognizer_config.name.clone(),
            same_person_cosine: recognizer_config.same_person_cosine,
            manual_threshold: self.threshold,
            quality: QualityPolicy { min_magnitude: self.min_quality, min_face_px: self.min_face_px },
        };
        // Fail on a wrong location or recogniser before running any model.
        let existing = location.open_for(&setup, false)?;
        let files = expand_inputs(&self.images)?;
        if files.is_empty() {
            return Err(Failure::bad_input("no photos (JPEG, PNG, WebP, BMP) given"));
        }
        let mut pipeline = self.detector.pipeline(&self.recognizer, false, false)?;
        let mut faces: Vec<Option<FaceSample>> = vec![None; files.len()];
        let mut refused = Vec::new();
        pipeline.run(&files, |outcome| {
            let source = outcome.path.display().to_string();
            match outcome.result {
                Ok(photo) => faces[outcome.index] = largest_face(photo.faces).map(|face| sample(face, source)),
                Err(InferError::NoFace { .. }) => refused.push(RefusedFace { source, refusal: Refusal::NoFace }),
                Err(e) => refused.push(RefusedFace { source, refusal: Refusal::Unreadable { message: strip_path(&e.to_string(), &outcome.path) } }),
            }
        });
        let faces: Vec<FaceSample> = faces.into_iter().flatten().collect();
        let report = location.enrol_photos(existing, &setup, &self.name, metadata, &faces, refused)?;
        let Some(store_location) = &report.location else {
            report_refusals(&report.refused);
            return Err(Failure::bad_input(format!("nothing enrolled: none of the {} photos has a usable face", files.len())));
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report).expect("serialisable"));
        } else {
            for face in &report.enrolled {
                println!("enrolled {} as {} (quality ‖x‖ = {:.3})", face.source, self.name, face.quality);
            }
            if report.accepted > 0 {
                let verb = if report.created { "created" } else { "now has" };
                println!("{}: {verb} {} templates in {store_location}", self.name, report.templates);
            }
        }
        report_refusals(&report.refused);
        if report.accepted == 0 {
            return Err(Failure::bad_input(format!("nothing enrolled: all {} photos refused", files.len())));
        }
        if self.detector.strict && !report.refused.is_empty() {
            return Err(Failure::bad_input(format!("{} of {} photos refused (--strict)", report.refused.len(), files.len())));
        }
        Ok(())
    }
}

fn report_refusals(refused: &[RefusedFace]) {
    for r in refused {
        eprintln!("visage: refused {}: {}", r.source, r.refusal);
    }
}

/// visage-infer's messages start with the file; the refusal names it already.
fn strip_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

fn sample(face: PhotoFace, source: String) -> FaceSample {
    FaceSample { embedding: face.embedding.embedding, magnitude: face.embedding.norm, bbox: Some(face.bbox), source }
}
