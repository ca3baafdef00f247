//! Training curves from a run's `metrics.csv`: loss, batch accuracy,
//! learning rate and mean feature norm against the step, as one HTML page
//! (and optionally one PNG/SVG with the four panels), drawn with
//! visage-eval's charts.

use std::path::{Path, PathBuf};

use visage_eval::plot::line::{ChartGrid, Line, LineChart};
use visage_eval::report::{write_html, Section};

use crate::error::{Result, TrainError};
use crate::metrics::HEADER;

/// The columns of `metrics.csv` the curves need, one entry per logged step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Curves {
    /// The step index (0-based), as a number for the charts' x axis.
    pub steps: Vec<f64>,
    /// The epoch the step belongs to (0-based).
    pub epochs: Vec<u64>,
    /// The learning rate the step used.
    pub lr: Vec<f64>,
    /// The batch-mean loss (MagFace's regulariser included).
    pub loss: Vec<f64>,
    /// Top-1 on the batch with the margin applied, in [0, 1]; NaN where the
    /// step logged none (Partial FC).
    pub accuracy: Vec<f64>,
    /// Mean L2 norm of the batch's features before normalisation.
    pub mean_feature_norm: Vec<f64>,
    /// Training throughput of the step.
    pub images_per_s: Vec<f64>,
}

impl Curves {
    /// Reads `metrics.csv` (a run folder or the file itself).
    pub fn load(path: &Path) -> Result<Self> {
        let file = if path.is_dir() { path.join("metrics.csv") } else { path.to_path_buf() };
        let text = std::fs::read_to_string(&file).map_err(|source| TrainError::Read { path: file.clone(), source })?;
        Self::parse(&text).map_err(|message| TrainError::Config { path: file, message })
    }

    /// Parses the text of a `metrics.csv`: columns found by name in the
    /// header, so extra or reordered columns are fine. The error names the
    /// missing column or the line and column of a bad cell, or says no step
    /// is logged yet.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let columns: Vec<&str> = header.split(',').collect();
        let index = |name: &str| columns.iter().position(|c| *c == name).ok_or_else(|| format!("no `{name}` column (expected the header {HEADER})"));
        let [step, epoch, lr, loss, accuracy, norm, speed] =
            ["step", "epoch", "lr", "loss", "accuracy", "mean_feature_norm", "images_per_s"].map(index);
        let (step, epoch, lr, loss, accuracy, norm, speed) = (step?, epoch?, lr?, loss?, accuracy?, norm?, speed?);
        let mut curves = Self::default();
        for (row, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let cells: Vec<&str> = line.split(',').collect();
            let number = |column: usize, name: &str| -> std::result::Result<f64, String> {
                let cell = cells.get(column).ok_or_else(|| format!("line {}: no `{name}` value", row + 2))?;
                if cell.is_empty() && name == "accuracy" {
                    return Ok(f64::NAN);
                }
                cell.parse::<f64>().map_err(|e| format!("line {}: `{name}` = {cell:?} is not a number ({e})", row + 2))
            };
            curves.steps.push(number(step, "step")?);
            curves.epochs.push(number(epoch, "epoch")? as u64);
            curves.lr.push(number(lr, "lr")?);
            curves.loss.push(number(loss, "loss")?);
            curves.accuracy.push(number(accuracy, "accuracy")?);
            curves.mean_feature_norm.push(number(norm, "mean_feature_norm")?);
            curves.images_per_s.push(number(speed, "images_per_s")?);
        }
        if curves.steps.is_empty() {
            return Err("no steps logged yet".into());
        }
        Ok(curves)
    }

    /// Per epoch: (epoch, mean loss, mean accuracy, mean feature norm, last lr).
    pub fn per_epoch(&self) -> Vec<(u64, f64, f64, f64, f64)> {
        let mut out: Vec<(u64, f64, f64, f64, f64)> = Vec::new();
        let mut i = 0;
        while i < self.epochs.len() {
            let epoch = self.epochs[i];
            let end = i + self.epochs[i..].iter().take_while(|&&e| e == epoch).count();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            out.push((epoch, mean(&self.loss[i..end]), mean(&self.accuracy[i..end]), mean(&self.mean_feature_norm[i..end]), self.lr[end - 1]));
            i = end;
        }
        out
    }

    /// Loss, accuracy, learning rate and mean feature norm against the step.
    pub fn charts(&self, run_name: &str) -> Vec<LineChart> {
        let series =
            |values: &[f64]| vec![Line { name: run_name.to_string(), points: self.steps.iter().copied().zip(values.iter().copied()).collect() }];
        let mut charts = vec![LineChart::new("Loss", "step", "loss", series(&self.loss))];
        if self.accuracy.iter().any(|a| a.is_finite()) {
            charts.push(LineChart::new("Batch accuracy", "step", "top-1 (margin applied)", series(&self.accuracy)));
        }
        charts.push(LineChart::new("Learning rate", "step", "lr", series(&self.lr)));
        charts.push(LineChart::new("Mean feature norm", "step", "mean ‖x‖ over the batch", series(&self.mean_feature_norm)));
        charts
    }
}

/// Where the curves of one run went.
#[derive(Clone, Debug)]
pub struct CurvesReport {
    /// The HTML page written.
    pub html: PathBuf,
    /// The PNG/SVG written, when one was asked for.
    pub image: Option<PathBuf>,
    /// Steps the log held.
    pub steps: usize,
}

/// Writes `html` (per-epoch table and the charts) and, when asked, `image`
/// (`.png` or `.svg`, the four panels on one canvas).
pub fn write_curves(run: &Path, html: &Path, image: Option<&Path>) -> Result<CurvesReport> {
    let curves = Curves::load(run)?;
    let name = run.file_name().map_or_else(|| run.display().to_string(), |n| n.to_string_lossy().into_owned());
    let report_error = |path: &Path| {
        let path = path.to_path_buf();
        move |e: visage_eval::EvalError| TrainError::Config { path, message: e.to_string() }
    };
    let charts = curves.charts(&name);
    let rows = curves
        .per_epoch()
        .into_iter()
        .map(|(epoch, loss, accuracy, norm, lr)| {
            let accuracy = if accuracy.is_finite() { format!("{:.1} %", 100.0 * accuracy) } else { "–".into() };
            vec![epoch.to_string(), format!("{loss:.4}"), accuracy, format!("{norm:.3}"), format!("{lr:.3e}")]
        })
        .collect();
    let header = ["epoch", "mean loss", "mean batch accuracy", "mean ‖x‖", "lr at the end"].map(String::from).to_vec();
    let mut summary = Section::new(format!("{name}: per epoch")).with_table(header, rows);
    let speed = {
        let mut speeds = curves.images_per_s.clone();
        speeds.sort_by(f64::total_cmp);
        speeds[speeds.len() / 2]
    };
    summary = summary.with_note(format!("{} steps logged; median {speed:.1} images/s.", curves.steps.len()));
    let mut sections = vec![summary];
    let mut curves_section = Section::new("Curves (one point per step)");
    for chart in &charts {
        curves_section = curves_section.with_chart(chart).map_err(report_error(html))?;
    }
    sections.push(curves_section);
    write_html(html, &format!("Training curves: {name}"), &sections).map_err(report_error(html))?;
    if let Some(image) = image {
        visage_eval::plot::save(&ChartGrid { charts, columns: 2 }, image).map_err(report_error(image))?;
    }
    Ok(CurvesReport { html: html.to_path_buf(), image: image.map(Path::to_path_buf), steps: curves.steps.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "step,epoch,lr,loss,accuracy,mean_feature_norm,images_per_s\n\
                       0,0,1.0e-1,4.0,0.25,8.0,100\n\
                       1,0,1.0e-1,2.0,0.75,9.0,300\n\
                       2,1,5.0e-2,1.0,,10.0,200\n";

    #[test]
    fn reads_the_log_and_averages_per_epoch() {
        let curves = Curves::parse(LOG).unwrap();
        assert_eq!(curves.steps, vec![0.0, 1.0, 2.0]);
        assert!(curves.accuracy[2].is_nan());
        let epochs = curves.per_epoch();
        assert_eq!(epochs[0], (0, 3.0, 0.5, 8.5, 0.1));
        assert_eq!((epochs[1].0, epochs[1].1, epochs[1].3, epochs[1].4), (1, 1.0, 10.0, 0.05));
    }

    #[test]
    fn bad_logs_name_the_line_and_column() {
        assert!(Curves::parse("step,epoch\n").unwrap_err().contains("no `lr` column"));
        let bad = LOG.replace("2.0,0.75", "two,0.75");
        assert_eq!(Curves::parse(&bad).unwrap_err(), "line 3: `loss` = \"two\" is not a number (invalid float literal)");
        assert_eq!(Curves::parse(HEADER).unwrap_err(), "no steps logged yet");
    }

    #[test]
    fn writes_html_and_a_png() {
        let dir = std::env::temp_dir().join(format!("visage-curves-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("metrics.csv"), LOG).unwrap();
        let report = write_curves(&dir, &dir.join("curves.html"), Some(&dir.join("curves.png"))).unwrap();
        assert_eq!(report.steps, 3);
        let html = std::fs::read_to_string(dir.join("curves.html")).unwrap();
        assert_eq!(html.matches("<svg").count(), 4, "loss, accuracy, lr, norm");
        assert!(html.contains("<td>3.0000</td>") && html.contains("<td>50.0 %</td>"), "epoch 0 means");
        let png = image::open(dir.join("curves.png")).unwrap();
        assert_eq!((png.width(), png.height()), (visage_eval::plot::WIDTH, visage_eval::plot::HEIGHT));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
