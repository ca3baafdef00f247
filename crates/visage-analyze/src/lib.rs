//! visage-analyze: the main job. A folder of photos goes through
//! visage-infer's pipeline; every face comes back with its identity
//! embedding and its magnitude (MagFace's quality score); faces are grouped
//! by person with visage-eval's agglomerative clustering; and the result is a
//! report a person looks at rather than reads.
//!
//! One module per step:
//! - [`collect`]: pipeline outcomes → faces (with crops) and failed photos;
//! - [`identities`]: faces → persons (average-linkage cosine clustering);
//! - [`quality`]: which faces are low quality (magnitude outliers);
//! - [`magnitude_figures`]: MagFace's figures (mean face per magnitude bin,
//!   magnitude against centrality in the person);
//! - [`montage`]: face crops in a captioned grid (PNG);
//! - [`heatmap`]: the face-by-face cosine similarity matrix as a picture;
//! - [`report`]: the self-contained HTML report; [`summary`]: the same as JSON.

#![warn(missing_docs)]

pub mod collect;
pub mod heatmap;
pub mod identities;
pub mod magnitude_figures;
/// Captioned face grids: visage-eval's plots, shared with the training side.
pub mod montage {
    pub use visage_eval::plot::montage::*;
}
pub mod quality;
pub mod report;
pub mod summary;

pub use collect::{Face, FaceCollection, PhotoFailure};
pub use identities::{group_identities, GroupingRule, IdentityConfig};
pub use magnitude_figures::{FigureOptions, MagnitudeFigures};
pub use quality::{flag_low_quality, LowQualityRule};

use std::path::Path;

/// Everything the report and the JSON summary show.
pub struct Analysis {
    /// The faces and failed photos the analysis is of.
    pub collection: FaceCollection,
    /// Person of each face, parallel to `collection.faces` (0 = the person with the
    /// most faces; labels are dense, `0..persons()`).
    pub person: Vec<usize>,
    /// Whether each face is low quality, parallel to `collection.faces`.
    pub low_quality: Vec<bool>,
    /// The magnitude below which a face is flagged (NaN for the robust rule on no faces).
    pub low_quality_below: f32,
    /// What the analysis ran with.
    pub settings: Settings,
    /// MagFace's figures over the persons (`None` without faces), made with
    /// the [`FigureOptions`] given to [`Analysis::new`].
    pub magnitude_figures: Option<MagnitudeFigures>,
}

/// What [`MagnitudeFigures`] says the analysis's clusters are.
const PERSONS: &str = "persons found by visage analyze";

/// What the analysis ran with, shown in the report so a reader can rerun it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Settings {
    /// The face detector, as named on the command line.
    pub detector: String,
    /// The recogniser model's name (from its config).
    pub recognizer: String,
    /// Cosine similarity at which two groups of faces count as one person.
    pub same_person_cosine: f32,
    /// How faces were formed into persons.
    pub grouping: String,
    /// The low-quality rule in words (a [`LowQualityRule`]'s `Display`).
    pub low_quality_rule: String,
}

impl Analysis {
    /// Groups and flags the collected faces, and draws MagFace's figures
    /// over the persons with `figures` (bins, k).
    ///
    /// # Errors
    /// [`visage_eval::EvalError::Invalid`] for bin edges that are not finite
    /// and strictly increasing, or no bins.
    pub fn new(
        collection: FaceCollection,
        identity: &IdentityConfig,
        rule: LowQualityRule,
        settings: Settings,
        figures: &FigureOptions,
    ) -> Result<Self, visage_eval::EvalError> {
        let embeddings: Vec<&[f32]> = collection.faces.iter().map(|f| f.embedding.as_slice()).collect();
        let magnitudes: Vec<f32> = collection.faces.iter().map(|f| f.magnitude).collect();
        let person = group_identities(&embeddings, &magnitudes, identity);
        let (low_quality, low_quality_below) = flag_low_quality(&magnitudes, rule);
        let clusters: Vec<i64> = person.iter().map(|&p| p as i64).collect();
        let magnitude_figures = MagnitudeFigures::compute(&collection.faces, &clusters, PERSONS, figures)?;
        Ok(Self { collection, person, low_quality, low_quality_below, settings, magnitude_figures })
    }

    /// Number of persons found (0 without faces).
    pub fn persons(&self) -> usize {
        self.person.iter().max().map_or(0, |&p| p + 1)
    }

    /// Face indices of each person, best quality (largest magnitude) first.
    pub fn faces_by_person(&self) -> Vec<Vec<usize>> {
        let mut groups = vec![Vec::new(); self.persons()];
        for (face, &person) in self.person.iter().enumerate() {
            groups[person].push(face);
        }
        let faces = &self.collection.faces;
        for group in &mut groups {
            group.sort_by(|&a, &b| faces[b].magnitude.total_cmp(&faces[a].magnitude));
        }
        groups
    }

    /// Writes the HTML report atomically (a temporary file, then a rename).
    ///
    /// # Errors
    /// [`AnalyzeError::Draw`] when a picture cannot be encoded, [`AnalyzeError::Write`]
    /// when the file cannot be written.
    pub fn write_report(&self, path: &Path) -> Result<(), AnalyzeError> {
        write_atomically(path, report::render(self)?.as_bytes())
    }

    /// Writes the JSON summary ([`summary::Summary`], pretty-printed) atomically.
    ///
    /// # Errors
    /// [`AnalyzeError::Write`] when the file cannot be written.
    pub fn write_summary(&self, path: &Path) -> Result<(), AnalyzeError> {
        let json = serde_json::to_string_pretty(&summary::Summary::of(self)).expect("summary serialises");
        write_atomically(path, json.as_bytes())
    }
}

/// Why a report, summary or montage could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// A file or folder could not be written (or created).
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file or folder.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A picture or chart could not be drawn or encoded.
    #[error("cannot draw {what}: {message}")]
    Draw {
        /// Which picture, in words (`"the heat-map"`, `"a montage"`, …).
        what: String,
        /// The drawing or encoding library's message.
        message: String,
    },
}

impl AnalyzeError {
    /// Never the input's fault: writing and drawing fail on the machine
    /// (exit code 1 at the command line); bad photos are reported per photo.
    pub fn is_bad_input(&self) -> bool {
        false
    }
}

/// Writes `bytes` to `path` so that a reader never sees a half-written file
/// and an old report survives a failed write (visage-image's temp file + rename).
///
/// # Errors
/// [`AnalyzeError::Write`] naming `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), AnalyzeError> {
    visage_image::write_atomically(path, bytes).map_err(|source| AnalyzeError::Write { path: path.to_path_buf(), source })
}

/// Writes `picture` as a PNG file, atomically.
///
/// # Errors
/// [`AnalyzeError::Write`] naming `path` (an encoding failure included).
pub fn write_png(picture: &image::RgbImage, path: &Path) -> Result<(), AnalyzeError> {
    visage_image::write_png(picture, path).map_err(|source| AnalyzeError::Write { path: path.to_path_buf(), source })
}

impl From<visage_eval::plot::montage::MontageError> for AnalyzeError {
    fn from(error: visage_eval::plot::montage::MontageError) -> Self {
        AnalyzeError::Draw { what: "a montage".into(), message: error.0 }
    }
}
