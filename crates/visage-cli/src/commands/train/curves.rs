//! `visage train curves RUN --out curves.html [--image curves.png]`.

use std::path::PathBuf;

use clap::Args;
use visage_train::curves::write_curves;
use visage_train::TrainError;

use crate::commands::Failure;

#[derive(Debug, Args)]
pub struct CurvesArgs {
    /// The run folder (with metrics.csv) or the metrics.csv file.
    #[arg(value_name = "RUN")]
    run: PathBuf,
    /// The HTML page to write (self-contained).
    #[arg(long, value_name = "HTML", default_value = "curves.html")]
    out: PathBuf,
    /// Also write the four charts on one canvas (.png or .svg).
    #[arg(long, value_name = "PNG|SVG")]
    image: Option<PathBuf>,
}

impl CurvesArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let report = write_curves(&self.run, &self.out, self.image.as_deref()).map_err(|e| match e {
            TrainError::Read { .. } | TrainError::Config { .. } => Failure::bad_input(e.to_string()),
            other => Failure::other(other.to_string()),
        })?;
        eprintln!(
            "visage: {} steps; curves {}{}",
            report.steps,
            report.html.display(),
            report.image.map(|p| format!(", {}", p.display())).unwrap_or_default()
        );
        Ok(())
    }
}
