//! `visage train --config train.toml`: train a recogniser; `--resume`
//! continues from the newest checkpoint of the run folder, to the bit.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use visage_backend::{run_autodiff, AutodiffJob, DeviceChoice};
use visage_train::{train, RunOptions, StepReport, TrainConfig, TrainError, TrainSummary};

use super::Failure;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The run's config (backbone, head, data, optimiser, schedule, checkpoints).
    #[arg(long, value_name = "TRAIN.toml")]
    config: PathBuf,
    /// Continue from the newest checkpoint in the run folder (a fresh start if there is none).
    #[arg(long)]
    resume: bool,
    /// Stop once this many steps are done in total (the run can be resumed later).
    #[arg(long, value_name = "STEPS")]
    stop_after: Option<u64>,
    /// cpu, cuda or cuda:N (cuda needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
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
            bar.set_message(format!("epoch {} loss {:.4}{accuracy} lr {:.2e} {:.1} img/s", report.epoch, report.loss, report.lr, report.images_per_s));
        });
        bar.finish_and_clear();
        summary
    }
}

impl TrainArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let config = TrainConfig::load(&self.config).map_err(|e| Failure::bad_input(e.to_string()))?;
        let job = TrainJob { config: &config, options: RunOptions { resume: self.resume, stop_after: self.stop_after } };
        let summary = run_autodiff(self.device, job).map_err(|e| Failure::bad_input(e.to_string()))?.map_err(|e| match e {
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
