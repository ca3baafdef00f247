//! The per-step log: `metrics.csv` in the run folder, one row per step,
//! appended and flushed as training goes (a killed run keeps its rows; a
//! resumed run drops rows past its checkpoint so none is counted twice).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};

/// The first line of `metrics.csv`, naming its columns in order.
pub const HEADER: &str = "step,epoch,lr,loss,accuracy,mean_feature_norm,images_per_s";

/// One step's line of `metrics.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsRow {
    /// The step's index, 0-based.
    pub step: u64,
    /// The epoch it belongs to (0-based).
    pub epoch: u64,
    /// The learning rate it used (written as `{:.6e}`).
    pub lr: f64,
    /// The batch-mean loss, MagFace's regulariser included (6 decimals).
    pub loss: f32,
    /// Top-1 on the batch's logits (margin applied to the target), `None` with Partial FC.
    pub accuracy: Option<f32>,
    /// Mean L2 norm of the batch's backbone features (4 decimals).
    pub mean_feature_norm: f32,
    /// Images of the step over its wall time: loading excluded, forward,
    /// backward and the optimiser included (2 decimals).
    pub images_per_s: f64,
}

/// An append-only CSV file of a run, cut back to the resume point on open.
pub struct CsvLog {
    path: PathBuf,
    file: std::fs::File,
}

impl CsvLog {
    /// Opens `dir/name`, keeping only rows whose first column (the step) is
    /// below `resume_step`, under `header`.
    pub fn open(dir: &Path, name: &str, header: &str, resume_step: u64) -> Result<Self> {
        let path = dir.join(name);
        let write_error = |source| TrainError::Write { path: path.clone(), source };
        let kept: Vec<String> = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .skip(1)
                .filter(|line| line.split(',').next().and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s < resume_step))
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        };
        let mut text = format!("{header}\n");
        for line in kept {
            text.push_str(&line);
            text.push('\n');
        }
        std::fs::write(&path, text).map_err(write_error)?;
        let file = std::fs::OpenOptions::new().append(true).open(&path).map_err(write_error)?;
        Ok(Self { path, file })
    }

    /// Writes `line` and a newline (unbuffered, so a killed run keeps it).
    pub fn append(&mut self, line: &str) -> Result<()> {
        writeln!(self.file, "{line}").map_err(|source| TrainError::Write { path: self.path.clone(), source })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `metrics.csv`: one row per step.
pub struct MetricsLog(CsvLog);

impl MetricsLog {
    /// Opens `dir/metrics.csv`, keeping only rows of steps before `resume_step`.
    pub fn open(dir: &Path, resume_step: u64) -> Result<Self> {
        CsvLog::open(dir, "metrics.csv", HEADER, resume_step).map(Self)
    }

    /// Where a run writing to `dir` keeps its metrics: `dir/metrics.csv`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join("metrics.csv")
    }

    /// Writes one row (the accuracy cell empty when there is none).
    pub fn append(&mut self, row: &MetricsRow) -> Result<()> {
        let accuracy = row.accuracy.map(|a| format!("{a:.4}")).unwrap_or_default();
        self.0.append(&format!(
            "{},{},{:.6e},{:.6},{accuracy},{:.4},{:.2}",
            row.step, row.epoch, row.lr, row.loss, row.mean_feature_norm, row.images_per_s
        ))
    }

    /// `dir/metrics.csv`.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}
