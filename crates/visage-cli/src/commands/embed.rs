//! `visage embed INPUT… --out emb.npy --index faces.csv`: every face of every
//! photo detected, aligned and embedded; one .npy row and one CSV line per face.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use ndarray::Array2;
use visage_infer::{align_face, FaceEmbedding, ALIGNED_SIZE, ARCFACE_TEMPLATE_112};

use super::face_models::{expand_inputs, DetectorArgs, Tally};
use super::Failure;

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Photos, or folders of photos (searched recursively).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Embeddings, one L2-normalised row per face (float32 .npy).
    #[arg(long, value_name = "EMB.npy")]
    out: PathBuf,
    /// One line per row of --out: file,face,x1,y1,x2,y2,det_score,magnitude,lx0,ly0,…,lx4,ly4.
    #[arg(long, value_name = "FACES.csv")]
    index: PathBuf,
    /// Inputs are already aligned 112×112 crops: no detection.
    #[arg(long)]
    aligned: bool,
    /// Recogniser: a config name in models/ or a path to a recogniser config (.toml).
    #[arg(long, default_value = "arcface_mobileface_128d_paddle")]
    recognizer: String,
    /// Flip test-time augmentation (sum of the face's and its mirror's features).
    #[arg(long)]
    flip_tta: bool,
    #[command(flatten)]
    detector: DetectorArgs,
}

/// One embedded face and where it came from.
struct Row {
    file: String,
    face: usize,
    bbox: [f32; 4],
    det_score: Option<f32>,
    landmarks: [[f32; 2]; 5],
    embedding: FaceEmbedding,
}

impl EmbedArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let files = expand_inputs(&self.inputs)?;
        let mut recognizer = self.detector.load_recognizer(&self.recognizer)?;
        if self.flip_tta {
            recognizer = recognizer.with_flip_tta(true);
        }
        let mut detector = if self.aligned { None } else { Some(self.detector.load_detector()?) };
        let options = self.detector.decode_options();
        let mut rows = Vec::new();
        let mut tally = Tally::default();
        for file in &files {
            let Some(image) = tally.load(file, &options) else { continue };
            let name = file.display().to_string();
            let (crops, found): (Vec<_>, Vec<_>) = match &mut detector {
                None => {
                    if image.dimensions() != (ALIGNED_SIZE, ALIGNED_SIZE) {
                        tally.fail(file, format!("--aligned expects {ALIGNED_SIZE}×{ALIGNED_SIZE} crops, this is {}×{}", image.width(), image.height()));
                        continue;
                    }
                    let template = ARCFACE_TEMPLATE_112.map(|[x, y]| [x as f32, y as f32]);
                    (vec![image], vec![([0.0, 0.0, ALIGNED_SIZE as f32, ALIGNED_SIZE as f32], None, template)])
                }
                Some(detector) => {
                    let faces = match detector.detect(&image) {
                        Ok(faces) if faces.is_empty() => {
                            tally.fail(file, "no face found");
                            continue;
                        }
                        Ok(faces) => faces,
                        Err(e) => {
                            tally.fail(file, e);
                            continue;
                        }
                    };
                    let mut crops = Vec::with_capacity(faces.len());
                    for face in &faces {
                        crops.push(align_face(&image, &face.landmarks).map_err(|e| Failure::other(format!("{name}: {e}")))?);
                    }
                    (crops, faces.into_iter().map(|d| (d.bbox, Some(d.score), d.landmarks)).collect())
                }
            };
            let embeddings = match recognizer.embed(&crops) {
                Ok(embeddings) => embeddings,
                Err(e) => {
                    tally.fail(file, e);
                    continue;
                }
            };
            for (face, ((bbox, det_score, landmarks), embedding)) in found.into_iter().zip(embeddings).enumerate() {
                rows.push(Row { file: name.clone(), face, bbox, det_score, landmarks, embedding });
            }
            tally.succeeded += 1;
        }
        if !rows.is_empty() {
            self.write(&rows)?;
        }
        eprintln!("visage: {} faces from {} of {} inputs", rows.len(), tally.succeeded, files.len());
        tally.finish(self.detector.strict)
    }

    fn write(&self, rows: &[Row]) -> Result<(), Failure> {
        let dim = rows[0].embedding.embedding.len();
        let mut matrix = Array2::<f32>::zeros((rows.len(), dim));
        for (mut out, row) in matrix.outer_iter_mut().zip(rows) {
            out.assign(&ndarray::ArrayView1::from(&row.embedding.embedding[..]));
        }
        let cannot = |path: &PathBuf, e: &dyn std::fmt::Display| Failure::other(format!("{}: cannot write: {e}", path.display()));
        ndarray_npy::write_npy(&self.out, &matrix).map_err(|e| cannot(&self.out, &e))?;

        let mut csv = String::from("file,face,x1,y1,x2,y2,det_score,magnitude");
        for k in 0..5 {
            csv.push_str(&format!(",lx{k},ly{k}"));
        }
        csv.push('\n');
        for row in rows {
            let [x1, y1, x2, y2] = row.bbox;
            let score = row.det_score.map(|s| format!("{s:.4}")).unwrap_or_default();
            csv.push_str(&format!("{},{},{x1:.2},{y1:.2},{x2:.2},{y2:.2},{score},{:.4}", csv_field(&row.file), row.face, row.embedding.norm));
            for [x, y] in row.landmarks {
                csv.push_str(&format!(",{x:.2},{y:.2}"));
            }
            csv.push('\n');
        }
        std::fs::File::create(&self.index).and_then(|mut f| f.write_all(csv.as_bytes())).map_err(|e| cannot(&self.index, &e))
    }
}

/// Quotes a CSV field when it holds a comma, quote or newline.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
