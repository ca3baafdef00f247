//! The analysis as JSON: what scripts read instead of the HTML report.

use serde::Serialize;

use crate::{Analysis, MagnitudeFigures, PhotoFailure, Settings};

/// The JSON document `write_summary` writes: the analysis without pictures or embeddings.
#[derive(Serialize)]
pub struct Summary<'a> {
    /// Photos given.
    pub photos: usize,
    /// Photos that gave at least one face.
    pub photos_with_faces: usize,
    /// Every face, in the collection's order (input order of the photos).
    pub faces: Vec<FaceSummary>,
    /// Every person, largest first; `persons[k].person == k`.
    pub persons: Vec<PersonSummary>,
    /// Photos that gave no face, and why.
    pub failures: &'a [PhotoFailure],
    /// The magnitude below which a face is flagged low quality (JSON `null` when NaN).
    pub low_quality_below: f32,
    /// What the analysis ran with.
    pub settings: &'a Settings,
    /// Seconds per pipeline stage, summed over photos.
    pub times: &'a visage_infer::StageTimes,
    /// MagFace's figures in numbers: magnitude bins (edges, counts, mean
    /// magnitudes, faces) and the centrality of each face in its person with
    /// Spearman's ρ (`null` without faces).
    pub magnitude_figures: Option<&'a MagnitudeFigures>,
}

/// One face in the summary.
#[derive(Serialize)]
pub struct FaceSummary {
    /// The photo's path, as given.
    pub file: String,
    /// Position of the face within its photo (detector order, 0-based).
    pub face: usize,
    /// `[x1, y1, x2, y2]` in photo pixels.
    pub bbox: [f32; 4],
    /// Detector confidence; `null` for aligned input.
    pub det_score: Option<f32>,
    /// Feature magnitude `‖x‖`, the quality score.
    pub magnitude: f32,
    /// The face's person, 0-based (the HTML report numbers persons from 1).
    pub person: usize,
    /// Whether the face is flagged low quality.
    pub low_quality: bool,
}

/// One person in the summary.
#[derive(Serialize)]
pub struct PersonSummary {
    /// The person's label, 0-based (0 = most faces).
    pub person: usize,
    /// Face indices into `faces`, best quality first.
    pub faces: Vec<usize>,
    /// Distinct photos the person appears in.
    pub photos: usize,
    /// Mean magnitude of the person's faces.
    pub mean_magnitude: f32,
}

impl<'a> Summary<'a> {
    /// The summary of `analysis`, borrowing what it can.
    pub fn of(analysis: &'a Analysis) -> Self {
        let faces = &analysis.collection.faces;
        let persons = analysis
            .faces_by_person()
            .into_iter()
            .enumerate()
            .map(|(person, members)| {
                let mut files: Vec<_> = members.iter().map(|&f| &faces[f].file).collect();
                files.sort();
                files.dedup();
                let mean_magnitude = members.iter().map(|&f| faces[f].magnitude).sum::<f32>() / members.len() as f32;
                PersonSummary { person, photos: files.len(), faces: members, mean_magnitude }
            })
            .collect();
        Summary {
            photos: analysis.collection.photos,
            photos_with_faces: analysis.collection.photos_with_faces,
            faces: faces
                .iter()
                .enumerate()
                .map(|(i, f)| FaceSummary {
                    file: f.file.display().to_string(),
                    face: f.face_in_photo,
                    bbox: f.bbox,
                    det_score: f.det_score,
                    magnitude: f.magnitude,
                    person: analysis.person[i],
                    low_quality: analysis.low_quality[i],
                })
                .collect(),
            persons,
            failures: &analysis.collection.failures,
            low_quality_below: analysis.low_quality_below,
            settings: &analysis.settings,
            times: &analysis.collection.times,
            magnitude_figures: analysis.magnitude_figures.as_ref(),
        }
    }
}
