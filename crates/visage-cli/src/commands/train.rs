//! `visage train --config train.toml`: train a recogniser; `--resume`
//! continues from the newest checkpoint of the run folder, to the bit.
//! `visage train curves RUN` draws a run's metrics.csv; `visage train
//! magnitude-demo RUN…` tests MagFace's magnitude-as-quality claim on runs.

mod curves;
mod magnitude_demo;
mod prepare_faces;

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use clap::{Args, Subcommand};
use visage_backend::{run_autodiff, AutodiffJob, DeviceChoice};
use visage_train::{train, RunOptions, StepReport, TrainConfig, TrainError, TrainSummary};

use super::Failure;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TrainArgs {
    #[command(subcommand)]
    tool: Option<TrainTool>,
    /// The run's config (backbone, head, data, optimiser, schedule, checkpoints).
    #[arg(long, value_name = "TRAIN.toml", required = true)]
    config: Option<PathBuf>,
    /// Continue from the newest checkpoint in the run folder (a fresh start if there is none).
    #[arg(long)]
    resume: bool,
    /// Stop once this many steps are done in total (the run can be resumed later).
    #[arg(long, value_name = "STEPS")]
    stop_after: Option<u64>,
    /// cpu, cuda or cuda:N (a build with `--features cuda`), or torch (libtorch on the CPU, `--features tch`).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

/// Tools for trained runs (`visage train --config …` itself trains).
#[derive(Debug, Subcommand)]
enum TrainTool {
    /// A run's metrics.csv as charts: loss, batch accuracy, learning rate, mean feature norm.
    Curves(curves::CurvesArgs),
    /// Feature magnitude and accuracy of trained runs as held-out images are
    /// blurred, noised and occluded (MagFace's quality claim, with Spearman's ρ).
    MagnitudeDemo(magnitude_demo::MagnitudeDemoArgs),
    /// Split aligned face crops (one folder per identity) into training and held-out folders.
    PrepareFaces(prepare_faces::PrepareFacesArgs),
}

struct TrainJob<'a> {
    config: &'a TrainConfig,
    options: RunOptions,
}

impl AutodiffJob for TrainJob<'_> {
    type Output = Result<TrainSummary, TrainError>;

    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps [{elapsed_precise}, ETA {eta}] {msg}").expect("valid template"),
        );
        let summary = train::<B>(self.config, device, &self.options, |report: &StepReport| {
            bar.set_length(report.total_steps);
            bar.set_position(report.steps_done);
            let accuracy = report.accuracy.map(|a| format!(" acc {:.1}%", 100.0 * a)).unwrap_or_default();
            bar.set_message(format!(
                "epoch {} loss {:.4}{accuracy} lr {:.2e} {:.1} img/s",
                report.epoch, report.loss, report.lr, report.images_per_s
            ));
        });
        bar.finish_and_clear();
        summary
    }
}

impl TrainArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let config_path = match (&self.tool, &self.config) {
            (Some(TrainTool::Curves(args)), _) => return args.run(),
            (Some(TrainTool::MagnitudeDemo(args)), _) => return args.run(),
            (Some(TrainTool::PrepareFaces(args)), _) => return args.run(),
            (None, Some(path)) => path,
            (None, None) => return Err(Failure::bad_input("--config TRAIN.toml is required")),
        };
        let config = TrainConfig::load(config_path).map_err(Failure::from)?;
        let job = TrainJob { config: &config, options: RunOptions { resume: self.resume, stop_after: self.stop_after } };
        let summary = run_autodiff(self.device, job).map_err(Failure::from)?.map_err(|e| match e {
            TrainError::Config { .. } | TrainError::Data(_) | TrainError::Read { .. } => Failure::bad_input(e.to_string()),
            other => Failure::other(other.to_string()),
        })?;
        if let Some(from) = &summary.resumed_from {
            eprintln!("visage: resumed from {}", from.display());
        }
        eprintln!(
            "visage: {} of {} steps done, last loss {:.4}; metrics {}{}",
            summary.steps_done,
            summary.total_steps,
            summary.last_loss,
            summary.metrics.display(),
            summary.last_checkpoint.as_ref().map(|p| format!(", checkpoint {}", p.display())).unwrap_or_default()
        );
        Ok(())
    }
}
