//! `visage train magnitude-demo RUN… --heldout DIR --out report.html`.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use visage_backend::{run_autodiff, AutodiffJob, DeviceChoice};
use visage_lab::magnitude_demo::{charts, evaluate_run, write_report, DemoOptions, RunResult};
use visage_train::TrainError;

use crate::commands::Failure;

#[derive(Debug, Args)]
pub struct MagnitudeDemoArgs {
    /// Run folders (newest checkpoint) or checkpoint folders, e.g. a MagFace and an ArcFace run.
    #[arg(value_name = "RUN", required = true)]
    runs: Vec<PathBuf>,
    /// Held-out images, one sub-folder per class (the training classes).
    #[arg(long, value_name = "DIR")]
    heldout: PathBuf,
    /// Clean images that define the class centres (default: each run's training data).
    #[arg(long, value_name = "DIR")]
    gallery: Option<PathBuf>,
    /// Severity levels after the clean one, per degradation.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// The HTML report to write (self-contained).
    #[arg(long, value_name = "HTML", default_value = "magnitude-demo.html")]
    out: PathBuf,
    /// Also save the magnitude chart (.png or .svg).
    #[arg(long, value_name = "PNG|SVG")]
    plot: Option<PathBuf>,
    /// Print the numbers as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// cpu, cuda, cuda:N or torch (see `visage train --help`).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

struct DemoJob<'a> {
    args: &'a MagnitudeDemoArgs,
    options: DemoOptions,
}

impl AutodiffJob for DemoJob<'_> {
    type Output = Result<Vec<RunResult>, TrainError>;

    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output {
        self.args.runs.iter().map(|run| evaluate_run::<B>(run, &self.options, device)).collect()
    }
}

impl MagnitudeDemoArgs {
    pub fn run(&self) -> Result<(), Failure> {
        if self.steps == 0 {
            return Err(Failure::bad_input("--steps must be at least 1"));
        }
        let options =
            DemoOptions { heldout: self.heldout.clone(), gallery: self.gallery.clone(), steps: self.steps, ..DemoOptions::new(&self.heldout) };
        let results = run_autodiff(self.device, DemoJob { args: self, options }).map_err(Failure::from)?.map_err(Failure::from)?;
        write_report(&results, &self.out).map_err(Failure::from)?;
        if let Some(plot) = &self.plot {
            visage_eval::plot::save(&charts(&results).0, plot).map_err(Failure::from)?;
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&results).expect("results serialise"));
        } else {
            for run in &results {
                println!(
                    "{} ({}): clean accuracy {:.1} %, clean mean ‖x‖ {:.3}",
                    run.name,
                    run.head,
                    100.0 * run.clean_accuracy(),
                    run.clean_mean_magnitude()
                );
                for ladder in &run.ladders {
                    let means: Vec<String> = ladder.levels.iter().map(|l| format!("{:.3}", l.mean_magnitude)).collect();
                    let accuracies: Vec<String> = ladder.levels.iter().map(|l| format!("{:.1}", 100.0 * l.accuracy)).collect();
                    println!(
                        "  {:<9} ρ(severity, ‖x‖) {:+.3} (per image {:+.3}), ρ(‖x‖, cos to centre) {:+.3}{}  mean ‖x‖ [{}]  accuracy % [{}]",
                        ladder.degradation.name(),
                        ladder.spearman_rho,
                        ladder.per_image_rho,
                        ladder.magnitude_cosine_rho,
                        if ladder.magnitude_falls_monotonically() { " monotone" } else { "" },
                        means.join(", "),
                        accuracies.join(", ")
                    );
                }
            }
        }
        eprintln!("visage: report {}{}", self.out.display(), self.plot.as_ref().map(|p| format!(", chart {}", p.display())).unwrap_or_default());
        Ok(())
    }
}
