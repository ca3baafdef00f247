//! `visage detect IMG…`: faces in photos, with boxes, scores and 5 landmarks.

use std::path::PathBuf;

use clap::Args;
use image::{Rgb, RgbImage};
use serde::Serialize;
use visage_infer::Detection;

use super::face_models::{expand_inputs, DetectorArgs, Tally};
use super::Failure;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Photos, or folders of photos (searched recursively).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    detector: DetectorArgs,
    /// Draw the boxes and landmarks onto a copy of the photo (one input only).
    #[arg(long, value_name = "OUT.png")]
    draw: Option<PathBuf>,
    /// Print one JSON object per photo (JSON lines) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct FaceJson {
    bbox: [f32; 4],
    score: f32,
    landmarks: [[f32; 2]; 5],
}

#[derive(Serialize)]
struct PhotoJson<'a> {
    file: &'a str,
    width: u32,
    height: u32,
    faces: Vec<FaceJson>,
}

impl DetectArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let files = expand_inputs(&self.inputs)?;
        if self.draw.is_some() && files.len() != 1 {
            return Err(Failure::bad_input(format!("--draw takes exactly one photo, got {}", files.len())));
        }
        let mut detector = self.detector.load_detector()?;
        let options = self.detector.decode_options();
        if !self.json {
            println!("file\tface\tx1\ty1\tx2\ty2\tscore\tlandmarks");
        }
        let mut tally = Tally::default();
        for file in &files {
            let Some(image) = tally.load(file, &options) else { continue };
            let faces = match detector.detect(&image) {
                Ok(faces) => faces,
                Err(e) => {
                    tally.fail(file, e);
                    continue;
                }
            };
            let name = file.display().to_string();
            if self.json {
                let photo = PhotoJson {
                    file: &name,
                    width: image.width(),
                    height: image.height(),
                    faces: faces.iter().map(|d| FaceJson { bbox: d.bbox, score: d.score, landmarks: d.landmarks }).collect(),
                };
                println!("{}", serde_json::to_string(&photo).map_err(|e| Failure::other(e.to_string()))?);
            } else {
                for (i, d) in faces.iter().enumerate() {
                    let landmarks: Vec<String> = d.landmarks.iter().map(|[x, y]| format!("{x:.1},{y:.1}")).collect();
                    let [x1, y1, x2, y2] = d.bbox;
                    println!("{name}\t{i}\t{x1:.1}\t{y1:.1}\t{x2:.1}\t{y2:.1}\t{:.3}\t{}", d.score, landmarks.join(" "));
                }
            }
            if faces.is_empty() {
                tally.fail(file, "no face found");
                continue;
            }
            if let Some(out) = &self.draw {
                let mut canvas = image.clone();
                draw_detections(&mut canvas, &faces);
                canvas.save(out).map_err(|e| Failure::other(format!("{}: cannot write: {e}", out.display())))?;
            }
            tally.succeeded += 1;
        }
        tally.finish(self.detector.strict)
    }
}

/// Box outlines in green and landmarks as red squares, thick enough to see
/// on a downscaled view of a large photo.
fn draw_detections(image: &mut RgbImage, faces: &[Detection]) {
    let thickness = (image.width().max(image.height()) / 400).max(1) as i64;
    let (w, h) = (i64::from(image.width()), i64::from(image.height()));
    let mut fill = |x0: i64, y0: i64, x1: i64, y1: i64, colour: Rgb<u8>| {
        for y in y0.max(0)..y1.min(h) {
            for x in x0.max(0)..x1.min(w) {
                image.put_pixel(x as u32, y as u32, colour);
            }
        }
    };
    let green = Rgb([0, 255, 0]);
    for face in faces {
        let [x1, y1, x2, y2] = face.bbox.map(|v| v.round() as i64);
        fill(x1, y1, x2, y1 + thickness, green);
        fill(x1, y2 - thickness, x2, y2, green);
        fill(x1, y1, x1 + thickness, y2, green);
        fill(x2 - thickness, y1, x2, y2, green);
        for [x, y] in face.landmarks {
            let (x, y) = (x.round() as i64, y.round() as i64);
            fill(x - 2 * thickness, y - 2 * thickness, x + 2 * thickness, y + 2 * thickness, Rgb([255, 0, 0]));
        }
    }
}
