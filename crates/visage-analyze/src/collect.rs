//! Pipeline outcomes → one flat list of faces in input order, plus the
//! photos that failed and why.

use std::path::{Path, PathBuf};

use image::RgbImage;
use visage_infer::{FacePipeline, Landmarks, PhotoOutcome, StageTimes};

/// One face found in one photo.
#[derive(Clone, Debug)]
pub struct Face {
    /// The photo the face is in, as given to [`FaceCollection::gather`].
    pub file: PathBuf,
    /// Position of the face within its photo (detector order, 0-based).
    pub face_in_photo: usize,
    /// `[x1, y1, x2, y2]` in photo pixels (the whole crop for aligned input).
    pub bbox: [f32; 4],
    /// Detector confidence in [0, 1]; `None` for aligned input (nothing was detected).
    pub det_score: Option<f32>,
    /// The 5 landmarks in photo pixels, in the alignment template's order.
    pub landmarks: Landmarks,
    /// `‖feature‖`: the quality score.
    pub magnitude: f32,
    /// The unit embedding: the identity.
    pub embedding: Vec<f32>,
    /// The 112×112 aligned crop, when the pipeline was told to keep crops.
    pub crop: Option<RgbImage>,
}

/// A photo that gave no face, and the reason.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PhotoFailure {
    /// The photo.
    pub file: PathBuf,
    /// The pipeline's error, without the file name it starts with.
    pub message: String,
}

/// Every face of a batch of photos.
#[derive(Clone, Debug, Default)]
pub struct FaceCollection {
    /// Photos given.
    pub photos: usize,
    /// Photos that gave at least one face.
    pub photos_with_faces: usize,
    /// Every face, in input order of the photos, then detector order within one.
    pub faces: Vec<Face>,
    /// Photos that gave no face (unreadable, undecodable, no face found), in input order.
    pub failures: Vec<PhotoFailure>,
    /// Seconds per pipeline stage, summed over photos.
    pub times: StageTimes,
}

impl FaceCollection {
    /// Runs `files` through `pipeline`; `progress` sees each outcome as it
    /// arrives (for a progress bar and for reporting failures at once).
    pub fn gather(pipeline: &mut FacePipeline, files: &[PathBuf], mut progress: impl FnMut(&PhotoOutcome)) -> Self {
        let mut outcomes = Vec::with_capacity(files.len());
        let times = pipeline.run(files, |outcome| {
            progress(&outcome);
            outcomes.push(outcome);
        });
        outcomes.sort_by_key(|o| o.index);
        let mut collection = Self { photos: files.len(), times, ..Self::default() };
        for outcome in outcomes {
            match outcome.result {
                Ok(photo) => {
                    collection.photos_with_faces += 1;
                    for (face_in_photo, face) in photo.faces.into_iter().enumerate() {
                        collection.faces.push(Face {
                            file: outcome.path.clone(),
                            face_in_photo,
                            bbox: face.bbox,
                            det_score: face.det_score,
                            landmarks: face.landmarks,
                            magnitude: face.embedding.norm,
                            embedding: face.embedding.embedding,
                            crop: face.crop,
                        });
                    }
                }
                Err(error) => {
                    let message = failure_message(&outcome.path, &error.to_string());
                    collection.failures.push(PhotoFailure { file: outcome.path, message });
                }
            }
        }
        collection
    }
}

/// The error text without the file name in front (the report shows it in its own column).
fn failure_message(path: &Path, message: &str) -> String {
    let shown = path.display().to_string();
    message.strip_prefix(&shown).map(|rest| rest.trim_start_matches(':').trim_start()).unwrap_or(message).to_string()
}
