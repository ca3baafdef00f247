//! The analysis as JSON: what scripts read instead of the HTML report.

use serde::Serialize;

use crate::{Analysis, PhotoFailure, Settings};

#[derive(Serialize)]
pub struct Summary<'a> {
    pub photos: usize,
    pub photos_with_faces: usize,
    pub faces: Vec<FaceSummary>,
    pub persons: Vec<PersonSummary>,
    pub failures: &'a [PhotoFailure],
    pub low_quality_below: f32,
    pub settings: &'a Settings,
    pub times: &'a visage_infer::StageTimes,
}

#[derive(Serialize)]
pub struct FaceSummary {
    pub file: String,
    pub face: usize,
    pub bbox: [f32; 4],
    pub det_score: Option<f32>,
    pub magnitude: f32,
    pub person: usize,
    pub low_quality: bool,
}

#[derive(Serialize)]
pub struct PersonSummary {
    pub person: usize,
    /// Face indices into `faces`, best quality first.
    pub faces: Vec<usize>,
    pub photos: usize,
    pub mean_magnitude: f32,
}

impl<'a> Summary<'a> {
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
        }
    }
}
