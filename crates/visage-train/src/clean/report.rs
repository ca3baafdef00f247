//! What cleaning reports: `dropped.csv` (written and read back),
//! `summary.json` and the montages of dropped faces.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use visage_data::{DecodeOptions, FaceSource};
use visage_eval::io::text::split_csv_line;
use visage_eval::plot::montage::{montage, Tile};
use visage_image::RgbImage;
use visage_image::{write_atomically, write_png};

use super::decide::Decisions;
use super::embed::Embedded;
use super::sample_name;
use crate::error::{Result, TrainError};
use crate::source::TrainSource;

/// The input's format, which the cleaned copy keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// An image folder, one sub-folder per identity (`"folder"` in JSON).
    Folder,
    /// An insightface `.rec` with its `.idx` (`"recordio"` in JSON).
    Recordio,
}

/// One class's line in `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassSummary {
    /// The class index the network was trained with.
    pub label: usize,
    /// The identity folder's name, or the label as text for RecordIO.
    pub name: String,
    /// Readable samples of the class (`kept + dropped`).
    pub samples: usize,
    /// Samples within the threshold, copied into the cleaned dataset.
    pub kept: usize,
    /// Samples beyond the threshold, listed in `dropped.csv`.
    pub dropped: usize,
    /// The sub-centre most of the class's samples are nearest to (0 for an empty class).
    pub dominant_subcentre: usize,
    /// Fraction of the class's samples nearest to the dominant sub-centre.
    pub dominant_share: f64,
    /// Per sub-centre, how many samples are nearest to it.
    pub nearest_counts: Vec<usize>,
}

/// A sample that could not be read or decoded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Unreadable {
    /// Its file, or `train.rec#key K` for RecordIO.
    pub sample: String,
    /// The read or decode error, as text.
    pub reason: String,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CleanSummary {
    /// The checkpoint folder whose sub-centres decided (the newest one when a
    /// run folder was named).
    pub checkpoint: PathBuf,
    /// Steps the checkpoint's run had taken.
    pub steps_done: u64,
    /// The dataset that was cleaned, as given.
    pub data: PathBuf,
    /// Its format, which the cleaned copy keeps.
    pub format: DataFormat,
    /// The cleaned dataset: a folder, or the `.rec` (its `.idx` beside it).
    pub cleaned: PathBuf,
    /// `out_dir/dropped.csv`.
    pub dropped_csv: PathBuf,
    /// `out_dir/montages`, one PNG per class that lost samples.
    pub montages: PathBuf,
    /// The threshold used, in degrees.
    pub max_angle_deg: f64,
    /// K of the checkpoint's `subcenter` head, at least 2.
    pub subcentres_per_class: usize,
    /// Readable samples, all classes (`kept + dropped`).
    pub samples: usize,
    /// Samples in the cleaned dataset.
    pub kept: usize,
    /// Samples left out, the rows of `dropped.csv`.
    pub dropped: usize,
    /// Samples that could not be read (left out of everything, the cleaned set included).
    pub unreadable: Vec<Unreadable>,
    /// One per class, by label, empty classes included.
    pub classes: Vec<ClassSummary>,
}

/// One row of `dropped.csv`; [`read_dropped_csv`] reads the file back.
#[derive(Clone, Debug, PartialEq)]
pub struct DroppedSample {
    /// The file (folder input) or `train.rec#key K` (RecordIO).
    pub sample: String,
    /// Index in the source (the loader's order).
    pub index: usize,
    /// Its class index.
    pub label: usize,
    /// Its class's name (folder name, or the label for RecordIO).
    pub class: String,
    /// Its angle to the dominant sub-centre of its class, in degrees (written with 4 decimals).
    pub angle_deg: f64,
    /// The sub-centre of its class it is closest to.
    pub nearest_subcentre: usize,
    /// Its class's dominant sub-centre.
    pub dominant_subcentre: usize,
}

/// The first line of `dropped.csv`; [`read_dropped_csv`] refuses a file without it.
pub const DROPPED_CSV_HEADER: &str = "sample,index,label,class,angle_deg,nearest_subcentre,dominant_subcentre";

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

impl DroppedSample {
    fn csv_row(&self) -> String {
        format!(
            "{},{},{},{},{:.4},{},{}",
            csv_field(&self.sample),
            self.index,
            self.label,
            csv_field(&self.class),
            self.angle_deg,
            self.nearest_subcentre,
            self.dominant_subcentre
        )
    }
}

/// Reads a `dropped.csv` back. Fails with [`TrainError::Read`] when the file
/// cannot be read and [`TrainError::Config`] (naming the line) on a wrong
/// header, a row without 7 fields or a field that is not a number.
pub fn read_dropped_csv(path: &Path) -> Result<Vec<DroppedSample>> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Read { path: path.to_path_buf(), source })?;
    let bad = |line: usize, message: String| TrainError::Config { path: path.to_path_buf(), message: format!("line {line}: {message}") };
    let mut lines = text.lines();
    if lines.next() != Some(DROPPED_CSV_HEADER) {
        return Err(bad(1, format!("expected the header {DROPPED_CSV_HEADER:?}")));
    }
    lines
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| {
            let fields = split_csv_line(line);
            if fields.len() != 7 {
                return Err(bad(i + 2, format!("{} fields, expected 7", fields.len())));
            }
            let number = |k: usize| fields[k].parse::<f64>().map_err(|e| bad(i + 2, format!("field {}: {e}", k + 1)));
            Ok(DroppedSample {
                sample: fields[0].clone(),
                index: number(1)? as usize,
                label: number(2)? as usize,
                class: fields[3].clone(),
                angle_deg: number(4)?,
                nearest_subcentre: number(5)? as usize,
                dominant_subcentre: number(6)? as usize,
            })
        })
        .collect()
}

/// The dropped samples as `dropped.csv` rows: by class, the largest angle
/// first, then by index.
pub(super) fn dropped_samples(source: &TrainSource, embedded: &Embedded, decisions: &Decisions, class_names: &[String]) -> Vec<DroppedSample> {
    let mut dropped: Vec<DroppedSample> = embedded
        .indices
        .iter()
        .zip(&embedded.labels)
        .zip(&decisions.samples)
        .filter(|(_, d)| !d.kept)
        .map(|((&index, &label), d)| DroppedSample {
            sample: sample_name(source, index),
            index,
            label,
            class: class_names[label].clone(),
            angle_deg: d.angle_deg,
            nearest_subcentre: d.nearest_subcentre,
            dominant_subcentre: decisions.classes[label].dominant_subcentre,
        })
        .collect();
    dropped.sort_by(|a, b| a.label.cmp(&b.label).then(b.angle_deg.total_cmp(&a.angle_deg)).then(a.index.cmp(&b.index)));
    dropped
}

/// Writes `out_dir/dropped.csv` atomically.
pub(super) fn write_dropped_csv(dropped: &[DroppedSample], out_dir: &Path) -> Result<PathBuf> {
    let mut csv = String::from(DROPPED_CSV_HEADER);
    csv.push('\n');
    for row in dropped {
        csv.push_str(&row.csv_row());
        csv.push('\n');
    }
    let dropped_csv = out_dir.join("dropped.csv");
    write_atomically(&dropped_csv, csv.as_bytes()).map_err(|e| write_error(&dropped_csv, e))?;
    Ok(dropped_csv)
}

/// One summary per class, in label order.
pub(super) fn class_summaries(decisions: &Decisions, dropped: &[DroppedSample], class_names: &[String]) -> Vec<ClassSummary> {
    decisions
        .classes
        .iter()
        .enumerate()
        .map(|(label, class)| {
            let dropped_here = dropped.iter().filter(|d| d.label == label).count();
            ClassSummary {
                label,
                name: class_names[label].clone(),
                samples: class.samples(),
                kept: class.samples() - dropped_here,
                dropped: dropped_here,
                dominant_subcentre: class.dominant_subcentre,
                dominant_share: class.dominant_share(),
                nearest_counts: class.nearest_counts.clone(),
            }
        })
        .collect()
}

/// Writes `out_dir/summary.json` atomically.
pub(super) fn write_summary(summary: &CleanSummary, out_dir: &Path) -> Result<PathBuf> {
    let summary_json = out_dir.join("summary.json");
    let json = serde_json::to_string_pretty(summary).expect("summary serialises");
    write_atomically(&summary_json, json.as_bytes()).map_err(|e| write_error(&summary_json, e))?;
    Ok(summary_json)
}

fn write_error(path: &Path, source: std::io::Error) -> TrainError {
    TrainError::Write { path: path.to_path_buf(), source }
}

/// One PNG per class with dropped samples: the dropped faces, largest angle
/// first, captioned with their angle and nearest sub-centre.
pub(super) fn write_montages(
    source: &TrainSource,
    dropped: &[DroppedSample],
    class_names: &[String],
    format: DataFormat,
    side: u32,
    per_class: usize,
    dir: &Path,
) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|source| TrainError::Write { path: dir.to_path_buf(), source })?;
    // Small crops (e.g. 32×32 digits) are shown at least 64 px wide so captions fit.
    let shown = side.max(64);
    let decode = DecodeOptions::default();
    for (label, name) in class_names.iter().enumerate() {
        let faces: Vec<(RgbImage, String)> = dropped
            .iter()
            .filter(|d| d.label == label)
            .take(per_class)
            .filter_map(|d| {
                let image = source.load(d.index, &decode).ok()?.image;
                let image = image::imageops::resize(&image, shown, shown, image::imageops::FilterType::Nearest);
                Some((image, format!("{:.0}° s{}", d.angle_deg, d.nearest_subcentre)))
            })
            .collect();
        if faces.is_empty() {
            continue;
        }
        let tiles: Vec<Tile<'_>> = faces.iter().map(|(crop, caption)| Tile { crop, caption: caption.clone(), flagged: false }).collect();
        let picture = montage(&tiles, 8).map_err(|e| TrainError::Write { path: dir.to_path_buf(), source: std::io::Error::other(e.to_string()) })?;
        let file = match format {
            DataFormat::Folder => dir.join(format!("{name}.png")),
            DataFormat::Recordio => dir.join(format!("class-{label}.png")),
        };
        write_png(&picture, &file).map_err(|e| write_error(&file, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_csv_round_trips_with_quoted_fields() {
        let row = DroppedSample {
            sample: "a,b \"c\".png".into(),
            index: 3,
            label: 1,
            class: "x".into(),
            angle_deg: 80.25,
            nearest_subcentre: 2,
            dominant_subcentre: 0,
        };
        let dir = std::env::temp_dir().join(format!("visage-clean-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dropped.csv");
        std::fs::write(&path, format!("{DROPPED_CSV_HEADER}\n{}\n", row.csv_row())).unwrap();
        assert_eq!(read_dropped_csv(&path).unwrap(), vec![row]);
        std::fs::write(&path, "nope\n").unwrap();
        assert!(read_dropped_csv(&path).unwrap_err().to_string().contains("dropped.csv"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
