//! `visage embed INPUT… --out emb.npy --index faces.csv`: every face of every
//! photo detected, aligned and embedded; one .npy row and one CSV line per face.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use ndarray::Array2;
use visage_infer::PhotoFace;

use super::face_models::{expand_inputs, progress_bar, FaceModelArgs, Tally};
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
    #[command(flatten)]
    models: FaceModelArgs,
}

/// One embedded face and where it came from.
struct Row {
    file: String,
    face: usize,
    face_data: PhotoFace,
}

impl EmbedArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let files = expand_inputs(&self.inputs)?;
        let mut pipeline = self.models.pipeline(false)?;
        let mut tally = Tally::default();
        let mut photos = Vec::new();
        let bar = progress_bar(files.len() as u64, "embedding");
        pipeline.run(&files, |outcome| {
            bar.suspend(|| tally.record(&outcome));
            bar.inc(1);
            if let Ok(faces) = outcome.result {
                photos.push((outcome.index, faces));
            }
        });
        bar.finish_and_clear();
        photos.sort_by_key(|(index, _)| *index);
        let rows: Vec<Row> = photos
            .into_iter()
            .flat_map(|(index, photo)| {
                let file = files[index].display().to_string();
                photo.faces.into_iter().enumerate().map(move |(face, face_data)| Row { file: file.clone(), face, face_data })
            })
            .collect();
        if !rows.is_empty() {
            self.write(&rows)?;
        }
        eprintln!("visage: {} faces from {} of {} inputs", rows.len(), tally.succeeded, files.len());
        tally.finish(self.models.detector.strict)
    }

    fn write(&self, rows: &[Row]) -> Result<(), Failure> {
        let dim = rows[0].face_data.embedding.embedding.len();
        let mut matrix = Array2::<f32>::zeros((rows.len(), dim));
        for (mut out, row) in matrix.outer_iter_mut().zip(rows) {
            out.assign(&ndarray::ArrayView1::from(&row.face_data.embedding.embedding[..]));
        }
        let cannot = |path: &PathBuf, e: &dyn std::fmt::Display| Failure::other(format!("{}: cannot write: {e}", path.display()));
        ndarray_npy::write_npy(&self.out, &matrix).map_err(|e| cannot(&self.out, &e))?;

        let mut csv = String::from("file,face,x1,y1,x2,y2,det_score,magnitude");
        for k in 0..5 {
            csv.push_str(&format!(",lx{k},ly{k}"));
        }
        csv.push('\n');
        for row in rows {
            let [x1, y1, x2, y2] = row.face_data.bbox;
            let score = row.face_data.det_score.map(|s| format!("{s:.4}")).unwrap_or_default();
            csv.push_str(&format!(
                "{},{},{x1:.2},{y1:.2},{x2:.2},{y2:.2},{score},{:.4}",
                csv_field(&row.file),
                row.face,
                row.face_data.embedding.norm
            ));
            for [x, y] in row.face_data.landmarks {
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
