//! MagFace's two figures for a set of faces (visage-eval's
//! [`magnitude_figures`](visage_eval::magnitude_figures) put to work on
//! collected faces): the **mean face per magnitude bin**, every face's
//! aligned 112×112 crop averaged with the others of its bin, each tile
//! captioned with the bin's range, count and mean `‖x‖`; and the magnitude
//! against the **centrality** of each face in its cluster (cosine to the
//! other members' mean direction, and GCN-V's kNN confidence), with
//! Spearman's rank correlation. `visage analyze` puts both in its report
//! (clusters: its persons); `visage eval magnitude-figures` writes them as
//! PNGs and JSON (clusters: its persons, or labels given).
//!
//! If magnitude is quality, the mean faces sharpen from left to right, and
//! ρ is positive: high-magnitude faces sit near their cluster's centre.

use std::path::{Path, PathBuf};

use image::RgbImage;
use ndarray::Array2;
use serde::Serialize;
use visage_eval::magnitude_figures::{
    bin_magnitudes, bins::bin_of, centre_cosines, empty_tile, knn_confidences, mean_image, rank_correlation, Binning,
};
use visage_eval::plot::line::Line;
use visage_eval::plot::mean_faces::{mean_face_row, MeanFaceTile};
use visage_eval::plot::scatter::{Panels, ScatterChart};
use visage_eval::EvalError;

use crate::{AnalyzeError, Face};

/// Neighbours of GCN-V's confidence by default. A face whose cluster has
/// fewer than `k` other members must count some neighbours of other
/// clusters, so a `k` above the typical cluster size measures cluster size
/// more than centrality; photo collections have persons of a handful of
/// faces (`shared/data/faces_dev`: half its persons have 2–10).
pub const DEFAULT_KNN: usize = 5;

/// How the figures are made.
#[derive(Clone, Debug, PartialEq)]
pub struct FigureOptions {
    /// The magnitude bins (default: 8 of equal counts, as the paper's 8 tiles).
    pub binning: Binning,
    /// Neighbours of the kNN confidence (default [`DEFAULT_KNN`]).
    pub knn: usize,
}

impl Default for FigureOptions {
    fn default() -> Self {
        Self { binning: Binning::default(), knn: DEFAULT_KNN }
    }
}

/// One magnitude bin of the figure.
#[derive(Clone, Debug, Serialize)]
pub struct BinSummary {
    /// The bin's range as its tile is headed (`< 21.3`, `21.3–22.8`, `≥ 27.1`).
    pub range: String,
    /// Inclusive lower edge (`null` for the first bin).
    pub lower: Option<f64>,
    /// Exclusive upper edge (`null` for the last bin).
    pub upper: Option<f64>,
    /// Faces in the bin.
    pub count: usize,
    /// Their mean magnitude (`null` for an empty bin).
    pub mean_magnitude: Option<f64>,
    /// Crops averaged into the mean face (faces with a kept crop).
    pub crops_averaged: usize,
    /// Indices of the faces in the bin, ascending.
    pub faces: Vec<usize>,
}

/// One centrality measure, per face and correlated with the magnitude.
#[derive(Clone, Debug, Serialize)]
pub struct CentralitySummary {
    /// The measure, in words.
    pub measure: String,
    /// Neighbours used (the kNN confidence only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Faces with a value (the pairs correlated).
    pub faces: usize,
    /// Spearman's ρ of magnitude and the measure (`null` below 3 faces or for a constant side).
    pub spearman_rho: Option<f64>,
    /// The measure of each face, in face order (`null` where undefined).
    pub values: Vec<Option<f64>>,
}

/// Both figures' numbers (what the JSON holds) and the mean faces.
#[derive(Clone, Debug, Serialize)]
pub struct MagnitudeFigures {
    /// How the bin edges were chosen.
    pub binning: Binning,
    /// The interior bin edges: `edges.len() + 1` bins.
    pub edges: Vec<f64>,
    /// The bins, lowest magnitudes first; their `faces` partition the faces.
    pub bins: Vec<BinSummary>,
    /// The bin of each face, in face order (`null` for a non-finite magnitude).
    pub face_bins: Vec<Option<usize>>,
    /// Where the clusters came from (e.g. `persons found by visage analyze`).
    pub clusters: String,
    /// Cosine of each face to the mean direction of the other faces of its cluster.
    pub centre_cosine: CentralitySummary,
    /// GCN-V's kNN confidence of each face with the clusters as labels.
    pub knn_confidence: CentralitySummary,
    /// Each bin's mean face (`None` for a bin without crops).
    #[serde(skip)]
    pub mean_faces: Vec<Option<RgbImage>>,
    /// Each face's magnitude, in face order.
    #[serde(skip)]
    pub magnitudes: Vec<f64>,
}

impl MagnitudeFigures {
    /// The figures of `faces` in `clusters` (one label per face, negative =
    /// no cluster); `clusters_from` says where the labels came from.
    /// `Ok(None)` when no face has a finite magnitude (and edges are to come
    /// from the data) — there is nothing to draw.
    ///
    /// # Errors
    /// [`EvalError::Invalid`] for a bad [`Binning`] or crops of different sizes.
    pub fn compute(faces: &[Face], clusters: &[i64], clusters_from: &str, options: &FigureOptions) -> Result<Option<Self>, EvalError> {
        assert_eq!(faces.len(), clusters.len(), "one cluster label per face");
        options.binning.check()?;
        let magnitudes: Vec<f64> = faces.iter().map(|f| f64::from(f.magnitude)).collect();
        if faces.is_empty() || !magnitudes.iter().any(|m| m.is_finite()) {
            return Ok(None);
        }
        let edges = options.binning.edges(&magnitudes)?;
        let decimals = label_decimals(&edges);
        let mut bins = Vec::new();
        let mut mean_faces = Vec::new();
        for bin in bin_magnitudes(&magnitudes, &edges) {
            let crops: Vec<&RgbImage> = bin.members.iter().filter_map(|&f| faces[f].crop.as_ref()).collect();
            mean_faces.push(mean_image(&crops)?);
            bins.push(BinSummary {
                range: bin.range_label(decimals),
                lower: bin.lower,
                upper: bin.upper,
                count: bin.members.len(),
                mean_magnitude: bin.mean_magnitude,
                crops_averaged: crops.len(),
                faces: bin.members,
            });
        }
        let dim = faces[0].embedding.len();
        let unit = Array2::from_shape_fn((faces.len(), dim), |(i, j)| faces[i].embedding.get(j).map_or(0.0, |&v| f64::from(v)));
        let centre = centre_cosines(&unit, clusters);
        let knn = knn_confidences(&unit, clusters, options.knn);
        let (c, k) = (rank_correlation(&magnitudes, &centre), rank_correlation(&magnitudes, &knn));
        Ok(Some(Self {
            binning: options.binning.clone(),
            face_bins: magnitudes.iter().map(|&m| bin_of(m, &edges)).collect(),
            edges,
            bins,
            clusters: clusters_from.into(),
            centre_cosine: CentralitySummary {
                measure: "cosine to the mean direction of the other faces of its cluster".into(),
                k: None,
                faces: c.faces,
                spearman_rho: c.spearman_rho,
                values: centre,
            },
            knn_confidence: CentralitySummary {
                measure: "GCN-V confidence: mean over the k most similar faces of ±cosine (+ same cluster, − other)".into(),
                k: Some(options.knn.min(faces.len() - 1)),
                faces: k.faces,
                spearman_rho: k.spearman_rho,
                values: knn,
            },
            mean_faces,
            magnitudes,
        }))
    }

    /// The row of mean faces, one tile per bin: range above, count and mean `‖x‖` below.
    ///
    /// # Errors
    /// [`AnalyzeError::Draw`] when the captions cannot be drawn.
    pub fn mean_face_picture(&self) -> Result<RgbImage, AnalyzeError> {
        let blank = empty_tile(112, 112);
        let tiles: Vec<MeanFaceTile<'_>> = self
            .bins
            .iter()
            .zip(&self.mean_faces)
            .map(|(bin, face)| MeanFaceTile {
                face: face.as_ref().unwrap_or(&blank),
                heading: format!("‖x‖ {}", bin.range),
                lines: vec![format!("n = {}", bin.count), bin.mean_magnitude.map_or_else(|| "no faces".into(), |m| format!("mean {m:.2}"))],
            })
            .collect();
        mean_face_row(&tiles, tiles.len().min(10)).map_err(|e| AnalyzeError::Draw { what: "the mean faces".into(), message: e.0 })
    }

    /// The two scatter charts: magnitude against each centrality measure, ρ in the titles.
    pub fn centrality_charts(&self) -> [ScatterChart; 2] {
        let chart = |summary: &CentralitySummary, name: &str, y_desc: &str| ScatterChart {
            title: format!("{name}: Spearman ρ {} (n = {})", rho_text(summary.spearman_rho), summary.faces),
            x_desc: "‖x‖".into(),
            y_desc: y_desc.into(),
            series: vec![Line {
                name: "faces".into(),
                points: self.magnitudes.iter().zip(&summary.values).filter_map(|(&m, v)| v.map(|v| (m, v))).collect(),
            }],
        };
        [
            chart(&self.centre_cosine, "Cosine to cluster centre", "cosine to the other members' mean"),
            chart(&self.knn_confidence, &format!("kNN confidence (k = {})", self.knn_confidence.k.unwrap_or(0)), "GCN-V confidence"),
        ]
    }

    /// The scatter charts side by side, as an SVG document (for the report).
    ///
    /// # Errors
    /// [`AnalyzeError::Draw`] when the chart cannot be drawn.
    pub fn centrality_svg(&self) -> Result<String, AnalyzeError> {
        let charts = self.centrality_charts();
        visage_eval::plot::to_svg_string(&Panels { charts: &charts, columns: 2 }).map_err(|e| draw_error(&e))
    }

    /// Writes `mean_faces.png` and `magnitude_centrality.png` into `dir`
    /// (created if missing); returns their paths.
    ///
    /// # Errors
    /// [`AnalyzeError::Write`] when `dir` or a file cannot be written, [`AnalyzeError::Draw`]
    /// when a figure cannot be drawn.
    pub fn write_pngs(&self, dir: &Path) -> Result<[PathBuf; 2], AnalyzeError> {
        std::fs::create_dir_all(dir).map_err(|source| AnalyzeError::Write { path: dir.to_path_buf(), source })?;
        let (faces, scatter) = (dir.join("mean_faces.png"), dir.join("magnitude_centrality.png"));
        crate::write_png(&self.mean_face_picture()?, &faces)?;
        let charts = self.centrality_charts();
        visage_eval::plot::save(&Panels { charts: &charts, columns: 2 }, &scatter).map_err(|e| draw_error(&e))?;
        Ok([faces, scatter])
    }
}

/// `0.412`, or `undefined` when there is no correlation to report.
pub fn rho_text(rho: Option<f64>) -> String {
    rho.map_or_else(|| "undefined".into(), |r| format!("{r:.3}"))
}

fn draw_error(error: &EvalError) -> AnalyzeError {
    AnalyzeError::Draw { what: "the magnitude-centrality chart".into(), message: error.to_string() }
}

/// Decimals of the bin labels: none for whole-number edges (MagFace's
/// `< 24 … ≥ 36`), else the fewest (1 to 3) that keep distinct edges distinct
/// when printed (quantile edges of a narrow range can be close).
fn label_decimals(edges: &[f64]) -> usize {
    if edges.iter().all(|e| e.fract() == 0.0) {
        return 0;
    }
    let distinct_at = |d: usize| edges.windows(2).all(|p| p[0] == p[1] || format!("{:.d$}", p[0]) != format!("{:.d$}", p[1]));
    (1..3).find(|&d| distinct_at(d)).unwrap_or(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A face with a flat crop of grey level `grey`, magnitude `magnitude`
    /// and unit embedding `direction`.
    pub(crate) fn face(grey: u8, magnitude: f32, direction: [f32; 2]) -> Face {
        let norm = (direction[0] * direction[0] + direction[1] * direction[1]).sqrt();
        Face {
            file: PathBuf::from(format!("face_{grey}.jpg")),
            face_in_photo: 0,
            bbox: [0.0, 0.0, 1.0, 1.0],
            det_score: Some(0.9),
            landmarks: [[0.0; 2]; 5],
            magnitude,
            embedding: vec![direction[0] / norm, direction[1] / norm],
            crop: Some(RgbImage::from_pixel(112, 112, image::Rgb([grey, grey / 2, 255 - grey]))),
        }
    }

    #[test]
    fn bins_partition_the_faces_and_average_their_crops() {
        let faces = vec![
            face(10, 5.0, [1.0, 0.1]),
            face(20, 11.0, [1.0, 0.0]),
            face(31, 6.0, [0.9, 0.3]),
            face(100, 12.0, [0.0, 1.0]),
            face(200, 8.0, [0.2, 1.0]),
        ];
        let options = FigureOptions { binning: Binning::Edges { edges: vec![7.0, 10.0] }, knn: 2 };
        let figures = MagnitudeFigures::compute(&faces, &[0, 0, 0, 1, 1], "test", &options).unwrap().unwrap();
        let members: Vec<Vec<usize>> = figures.bins.iter().map(|b| b.faces.clone()).collect();
        assert_eq!(members, vec![vec![0, 2], vec![4], vec![1, 3]]);
        assert_eq!(figures.face_bins, vec![Some(0), Some(2), Some(0), Some(2), Some(1)]);
        assert_eq!(figures.bins.iter().map(|b| b.count).sum::<usize>(), faces.len());
        assert_eq!(figures.bins[0].range, "< 7");
        assert_eq!(label_decimals(&[6.6, 6.94, 7.5]), 1);
        assert_eq!(label_decimals(&[8.62, 8.64, 8.8]), 2);
        assert_eq!(label_decimals(&[8.6612, 8.6618]), 3);
        assert_eq!(figures.bins[0].mean_magnitude, Some(5.5));
        // Bin 0's mean face by hand: R (10 + 31) / 2 = 20.5 → 21, G (5 + 15) / 2 = 10,
        // B (245 + 224) / 2 = 234.5 → 235.
        let mean = figures.mean_faces[0].as_ref().unwrap();
        assert_eq!(mean.get_pixel(0, 0).0, [21, 10, 235]);
        assert_eq!(mean.get_pixel(111, 111).0, [21, 10, 235]);
        // Bin 2: (20 + 100) / 2 = 60, (10 + 50) / 2 = 30, (235 + 155) / 2 = 195.
        assert_eq!(figures.mean_faces[2].as_ref().unwrap().get_pixel(50, 50).0, [60, 30, 195]);
        let picture = figures.mean_face_picture().unwrap();
        assert_eq!(picture.width(), 8 + 3 * 120);
        // Three faces in cluster 0, two in cluster 1: all have a centre cosine.
        assert_eq!(figures.centre_cosine.faces, 5);
        assert!(figures.centre_cosine.spearman_rho.is_some());
        let svg = figures.centrality_svg().unwrap();
        assert!(svg.contains("Cosine to cluster centre") && svg.contains("kNN confidence (k = 2)"), "both panels");
    }

    #[test]
    fn the_report_and_the_summary_carry_both_figures() {
        let faces: Vec<Face> = (0..6).map(|i| face(40 * i as u8, 10.0 + i as f32, [1.0, 0.1 * i as f32])).collect();
        let collection = crate::FaceCollection { photos: 6, photos_with_faces: 6, faces, ..Default::default() };
        let settings = crate::Settings {
            detector: "d".into(),
            recognizer: "r".into(),
            same_person_cosine: 0.5,
            grouping: "g".into(),
            low_quality_rule: "l".into(),
        };
        let analysis =
            crate::Analysis::new(collection, &crate::IdentityConfig::new(0.5), crate::LowQualityRule::default(), settings, &FigureOptions::default())
                .unwrap();
        let figures = analysis.magnitude_figures.as_ref().expect("figures of six faces");
        // Eight quantile bins of six distinct magnitudes: the counts add up to the faces.
        assert_eq!(figures.bins.len(), 8);
        assert_eq!(figures.bins.iter().map(|b| b.count).sum::<usize>(), 6);
        let html = crate::report::render(&analysis).unwrap();
        assert!(html.contains("<h3>Mean face per magnitude bin</h3>"));
        assert!(html.contains("alt=\"mean face per magnitude bin\" style=\"max-width:100%\" src=\"data:image/png;base64,"));
        assert!(html.contains("<h3>Magnitude against centrality in the person</h3>"));
        assert!(html.contains("Cosine to cluster centre: Spearman ρ") && html.contains("kNN confidence (k = 5)"));
        let summary = serde_json::to_value(crate::summary::Summary::of(&analysis)).unwrap();
        let bins = summary["magnitude_figures"]["bins"].as_array().unwrap();
        assert_eq!(bins.iter().map(|b| b["count"].as_u64().unwrap()).sum::<u64>(), 6);
        assert_eq!(summary["magnitude_figures"]["centre_cosine"]["values"].as_array().unwrap().len(), 6);
    }

    #[test]
    fn no_faces_no_figures_and_bad_edges_refused() {
        assert!(MagnitudeFigures::compute(&[], &[], "test", &FigureOptions::default()).unwrap().is_none());
        let bad = FigureOptions { binning: Binning::Edges { edges: vec![3.0, 2.0] }, knn: 3 };
        assert!(MagnitudeFigures::compute(&[face(1, 1.0, [1.0, 0.0])], &[0], "test", &bad).is_err());
    }
}
