//! `visage train --config train.toml`: train a recogniser; `--resume`
//! continues from the newest checkpoint of the run folder, to the bit.
//! `--nodes N --node-rank R --coordinator HOST:PORT` makes this process one
//! node of a run over several processes or machines (visage_train::distributed).
//! `visage train curves RUN` draws a run's metrics.csv; `visage train
//! magnitude-demo RUN…` tests MagFace's magnitude-as-quality claim on runs.

mod curves;
mod magnitude_demo;
mod prepare_faces;

use std::path::PathBuf;
use std::time::Duration;

use burn::tensor::backend::AutodiffBackend;
use clap::{Args, Subcommand};
use visage_backend::{run_autodiff, AutodiffJob, DeviceChoice};
use visage_train::distributed::NodeLayout;
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
    /// Processes (nodes) in the run; each runs its [parallel] workers (docs/multinode.md).
    #[arg(long, default_value_t = 1, value_name = "N")]
    nodes: usize,
    /// This node's rank, 0..N; node 0 hosts the coordinator and writes checkpoints and metrics.
    #[arg(long, default_value_t = 0, value_name = "R")]
    node_rank: usize,
    /// Node 0's address, the same on every node (needed with --nodes above 1).
    #[arg(long, value_name = "HOST:PORT")]
    coordinator: Option<String>,
    /// The host other nodes reach this one at (default: this machine's address on the route to the coordinator).
    #[arg(long, value_name = "HOST")]
    node_host: Option<String>,
    /// This node's port for tensor transfers (default: the coordinator's port + 1 + rank).
    #[arg(long, value_name = "PORT")]
    data_port: Option<u16>,
    /// Seconds to wait for every node to join, and for each step's exchange, before stopping with an error.
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    timeout_s: f64,
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
        let nodes = self.node_layout()?;
        let distributed = nodes.is_some();
        let job = TrainJob { config: &config, options: RunOptions { resume: self.resume, stop_after: self.stop_after, nodes } };
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
        if distributed {
            eprintln!(
                "visage: node {} of {}: {} steps, communication {:.1} ms per step",
                self.node_rank,
                self.nodes,
                summary.steps_taken,
                1e3 * summary.communication.as_secs_f64() / summary.steps_taken.max(1) as f64
            );
        }
        Ok(())
    }

    /// The node layout of `--nodes … --coordinator …`; `None` for a run
    /// of this process alone (no flag given).
    fn node_layout(&self) -> Result<Option<NodeLayout>, Failure> {
        let Some(coordinator) = &self.coordinator else {
            if self.nodes > 1 || self.node_rank > 0 || self.node_host.is_some() || self.data_port.is_some() {
                return Err(Failure::bad_input("--nodes, --node-rank, --node-host and --data-port need --coordinator HOST:PORT"));
            }
            return Ok(None);
        };
        if !(self.timeout_s.is_finite() && self.timeout_s > 0.0) {
            return Err(Failure::bad_input(format!("--timeout-s {} must be a positive number of seconds", self.timeout_s)));
        }
        let layout = NodeLayout {
            nodes: self.nodes,
            node_rank: self.node_rank,
            coordinator: coordinator.clone(),
            node_host: self.node_host.clone(),
            data_port: self.data_port,
            timeout: Duration::from_secs_f64(self.timeout_s),
        };
        layout.validate().map_err(Failure::bad_input)?;
        Ok(Some(layout))
    }
}
