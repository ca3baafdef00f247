//! `visage eval magnitude-figures PHOTOS… --out DIR`: MagFace's two figures
//! over any set of photos — the mean face per magnitude bin, and magnitude
//! against centrality in the cluster with Spearman's ρ — as PNGs and a JSON
//! of the numbers. The faces come from the same pipeline as `visage
//! analyze` (crops kept); the clusters are its persons, or labels given.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use visage_analyze::magnitude_figures::{rho_text, FigureOptions, MagnitudeFigures, DEFAULT_KNN};
use visage_analyze::{group_identities, FaceCollection, IdentityConfig, PhotoFailure};
use visage_eval::io::labels::read_labels;
use visage_eval::magnitude_figures::Binning;
use visage_eval::EvalError;

use super::{input, print_json, print_line};
use crate::commands::face_models::{expand_inputs, progress_bar, same_person_cosine, FaceModelArgs, Tally};
use crate::commands::Failure;

/// How the magnitude bins and the kNN confidence are made (shared with `visage analyze`).
#[derive(Debug, Args)]
pub struct FigureArgs {
    /// Number of magnitude bins of the mean-face figure.
    #[arg(long, value_name = "N", default_value_t = 8, conflicts_with = "edges")]
    pub bins: usize,
    /// How the bin edges come from the magnitudes: `quantile` (equal counts)
    /// or `width` (equal widths over the observed range).
    #[arg(long, value_name = "HOW", default_value = "quantile", value_parser = ["quantile", "width"], conflicts_with = "edges")]
    pub binning: String,
    /// Interior bin edges instead, strictly increasing (MagFace's figure:
    /// `24,26,28,30,32,34,36`): k edges make k + 1 bins.
    #[arg(long, value_name = "A,B,…", value_delimiter = ',', num_args = 1..)]
    pub edges: Option<Vec<f64>>,
    /// Neighbours of each face's kNN (GCN-V) confidence.
    #[arg(long, value_name = "K", default_value_t = DEFAULT_KNN)]
    pub knn: usize,
}

impl FigureArgs {
    /// The options, checked (bad values are bad input, exit 2).
    pub fn options(&self) -> Result<FigureOptions, Failure> {
        let binning = match (&self.edges, self.binning.as_str()) {
            (Some(edges), _) => Binning::Edges { edges: edges.clone() },
            (None, "width") => Binning::EqualWidth { bins: self.bins },
            (None, _) => Binning::Quantile { bins: self.bins },
        };
        binning.check().map_err(input)?;
        Ok(FigureOptions { binning, knn: self.knn })
    }
}

/// Arguments of `visage eval magnitude-figures`.
#[derive(Debug, Args)]
pub struct MagnitudeFiguresArgs {
    /// Photos, or folders of photos (searched recursively).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Folder for mean_faces.png, magnitude_centrality.png and magnitude_figures.json.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    figures: FigureArgs,
    /// Cluster labels, one integer per face in the order of the JSON's
    /// `faces` (photos in input order, faces in detector order); −1 = none.
    /// Default: the persons `visage analyze` would form.
    #[arg(long, value_name = "L.txt")]
    labels: Option<PathBuf>,
    /// Persons are grouped while their mean cosine is at least this (without
    /// `--labels`) [default: as `visage analyze`].
    #[arg(long, value_name = "COSINE")]
    same_person_cosine: Option<f32>,
    /// Print the JSON written to magnitude_figures.json instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    models: FaceModelArgs,
}

/// One face of the JSON.
#[derive(Serialize)]
struct FaceRow {
    file: String,
    face: usize,
    bbox: [f32; 4],
    magnitude: f32,
    cluster: i64,
}

/// What `magnitude_figures.json` holds.
#[derive(Serialize)]
struct FiguresJson<'a> {
    photos: usize,
    photos_with_faces: usize,
    recognizer: &'a str,
    /// Every face, in the order of the per-face arrays of `figures`.
    faces: Vec<FaceRow>,
    failures: &'a [PhotoFailure],
    figures: &'a MagnitudeFigures,
    /// The pictures written, as paths.
    mean_faces_png: String,
    centrality_png: String,
}

impl MagnitudeFiguresArgs {
    pub fn run(&self, out: &mut dyn Write) -> Result<(), Failure> {
        let options = self.figures.options()?;
        let labels = self.labels.as_ref().map(|path| read_labels(path).map_err(input)).transpose()?;
        let config = self.models.recognizer.config()?;
        let files = expand_inputs(&self.inputs)?;
        let mut pipeline = self.models.pipeline(true)?;
        let mut tally = Tally::default();
        let bar = progress_bar(files.len() as u64, "embedding");
        let collection = FaceCollection::gather(&mut pipeline, &files, |outcome| {
            bar.suspend(|| tally.record(outcome));
            bar.inc(1);
        });
        bar.finish_and_clear();
        let faces = &collection.faces;
        if faces.is_empty() {
            tally.finish(self.models.detector.strict)?;
            return Err(Failure::bad_input("no face found in the photos: nothing to draw"));
        }

        let (clusters, clusters_from) = match (&labels, &self.labels) {
            (Some(labels), Some(path)) => {
                if labels.len() != faces.len() {
                    let message = format!("{} labels, but the photos gave {} faces: expected one label per face", labels.len(), faces.len());
                    return Err(input(EvalError::content(path, message)));
                }
                (labels.clone(), format!("labels of {}", path.display()))
            }
            _ => {
                let threshold = same_person_cosine(self.same_person_cosine.or(config.cluster_cosine), &config)?;
                let embeddings: Vec<&[f32]> = faces.iter().map(|f| f.embedding.as_slice()).collect();
                let magnitudes: Vec<f32> = faces.iter().map(|f| f.magnitude).collect();
                let persons = group_identities(&embeddings, &magnitudes, &IdentityConfig::new(threshold));
                (persons.iter().map(|&p| p as i64).collect(), format!("persons as visage analyze forms them (cosine ≥ {threshold})"))
            }
        };
        let figures = MagnitudeFigures::compute(faces, &clusters, &clusters_from, &options)
            .map_err(input)?
            .ok_or_else(|| Failure::bad_input("no face with a finite magnitude: nothing to draw"))?;
        let [faces_png, centrality_png] = figures.write_pngs(&self.out).map_err(Failure::from)?;
        let json = FiguresJson {
            photos: collection.photos,
            photos_with_faces: collection.photos_with_faces,
            recognizer: &config.name,
            faces: faces
                .iter()
                .zip(&clusters)
                .map(|(f, &cluster)| FaceRow {
                    file: f.file.display().to_string(),
                    face: f.face_in_photo,
                    bbox: f.bbox,
                    magnitude: f.magnitude,
                    cluster,
                })
                .collect(),
            failures: &collection.failures,
            figures: &figures,
            mean_faces_png: faces_png.display().to_string(),
            centrality_png: centrality_png.display().to_string(),
        };
        let json_path = self.out.join("magnitude_figures.json");
        let text = serde_json::to_string_pretty(&json).expect("serialisable figures");
        visage_analyze::write_atomically(&json_path, text.as_bytes()).map_err(Failure::from)?;
        eprintln!("visage: {} faces; wrote {}, {} and {}", faces.len(), faces_png.display(), centrality_png.display(), json_path.display());
        if self.json {
            print_json(out, &json)?;
        } else {
            self.print_table(out, &figures)?;
        }
        tally.finish(self.models.detector.strict)
    }

    fn print_table(&self, out: &mut dyn Write, figures: &MagnitudeFigures) -> Result<(), Failure> {
        print_line(out, "bin\trange\tcount\tmean_magnitude")?;
        for (i, bin) in figures.bins.iter().enumerate() {
            let mean = bin.mean_magnitude.map_or_else(|| "-".into(), |m| format!("{m:.3}"));
            print_line(out, format!("{i}\t{}\t{}\t{mean}", bin.range, bin.count))?;
        }
        let (c, k) = (&figures.centre_cosine, &figures.knn_confidence);
        print_line(out, format!("Spearman rho (magnitude, cosine to cluster centre): {} over {} faces", rho_text(c.spearman_rho), c.faces))?;
        print_line(
            out,
            format!("Spearman rho (magnitude, kNN confidence, k = {}): {} over {} faces", k.k.unwrap_or(0), rho_text(k.spearman_rho), k.faces),
        )
    }
}
