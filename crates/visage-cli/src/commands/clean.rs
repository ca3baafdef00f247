//! `visage clean --checkpoint RUN --data PATH --out DIR`: sub-centre ArcFace
//! cleaning of noisy training data (visage_train::clean). `visage clean
//! noise-demo` measures it on labels flipped on purpose.

mod noise_demo;

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use clap::{Args, Subcommand};
use visage_backend::{run_autodiff, AutodiffJob, DeviceChoice};
use visage_train::clean::{clean, CleanOptions, CleanReport, DataFormat, DEFAULT_MAX_ANGLE_DEG};
use visage_train::TrainError;

use super::Failure;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CleanArgs {
    #[command(subcommand)]
    tool: Option<CleanTool>,
    /// A run trained with the `subcenter` head (k > 1): its folder (newest checkpoint) or one checkpoint folder.
    #[arg(long, value_name = "DIR", required = true)]
    checkpoint: Option<PathBuf>,
    /// The data to clean: an image folder (one sub-folder per identity) or a train.rec; the classes the run was trained on.
    #[arg(long, value_name = "PATH", required = true)]
    data: Option<PathBuf>,
    /// Where the cleaned data (data/ or train.rec + train.idx), dropped.csv, summary.json and montages/ go.
    #[arg(long, value_name = "DIR", required = true)]
    out: Option<PathBuf>,
    /// Drop samples further than this (degrees) from their class's dominant sub-centre.
    #[arg(long, default_value_t = DEFAULT_MAX_ANGLE_DEG)]
    max_angle: f64,
    /// Images per forward pass.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// cpu, cuda or cuda:N (a build with `--features cuda`), or torch (libtorch on the CPU, `--features tch`).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

/// Experiments on cleaning (`visage clean --checkpoint …` itself cleans).
#[derive(Debug, Subcommand)]
enum CleanTool {
    /// Flip a known fraction of training labels, clean, and train on raw vs cleaned data:
    /// precision/recall of the drops and held-out verification accuracy, with charts.
    NoiseDemo(noise_demo::NoiseDemoArgs),
}

struct CleanJob<'a> {
    args: &'a CleanArgs,
    checkpoint: &'a PathBuf,
    data: &'a PathBuf,
    out: &'a PathBuf,
}

impl AutodiffJob for CleanJob<'_> {
    type Output = Result<CleanReport, TrainError>;

    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output {
        let args = self.args;
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("embedding {bar:30} {pos}/{len} samples [{elapsed_precise}, ETA {eta}]").expect("valid template"),
        );
        let options = CleanOptions { max_angle_deg: args.max_angle, batch_size: args.batch, ..CleanOptions::default() };
        // The inner (non-autodiff) backend runs the network in eval mode.
        let report = clean::<B::InnerBackend>(self.checkpoint, self.data, self.out, &options, device, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        });
        bar.finish_and_clear();
        report
    }
}

impl CleanArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let (checkpoint, data, out) = match (&self.tool, &self.checkpoint, &self.data, &self.out) {
            (Some(CleanTool::NoiseDemo(args)), ..) => return args.run(),
            (None, Some(checkpoint), Some(data), Some(out)) => (checkpoint, data, out),
            _ => return Err(Failure::bad_input("--checkpoint, --data and --out are required")),
        };
        if self.batch == 0 {
            return Err(Failure::bad_input("--batch must be at least 1"));
        }
        let report = run_autodiff(self.device, CleanJob { args: self, checkpoint, data, out }).map_err(Failure::from)?.map_err(|e| match e {
            TrainError::Write { .. } | TrainError::Backbone(_) | TrainError::Head(_) | TrainError::Diverged { .. } => Failure::other(e.to_string()),
            other => Failure::bad_input(other.to_string()),
        })?;
        let summary = &report.summary;
        for unreadable in &summary.unreadable {
            eprintln!("visage: skipped (unreadable): {}", unreadable.reason);
        }
        let emptied = summary.classes.iter().filter(|c| c.samples > 0 && c.kept == 0).count();
        println!(
            "{} samples: kept {}, dropped {} ({:.1} %) beyond {}° of their class's dominant sub-centre (k = {}){}{}",
            summary.samples,
            summary.kept,
            summary.dropped,
            100.0 * summary.dropped as f64 / summary.samples.max(1) as f64,
            summary.max_angle_deg,
            summary.subcentres_per_class,
            if summary.unreadable.is_empty() { String::new() } else { format!("; {} unreadable, skipped", summary.unreadable.len()) },
            if emptied > 0 { format!("; {emptied} classes lost every sample") } else { String::new() },
        );
        let cleaned = match summary.format {
            DataFormat::Folder => format!("cleaned folder {}", summary.cleaned.display()),
            DataFormat::Recordio => format!("cleaned {} (+ .idx)", summary.cleaned.display()),
        };
        eprintln!(
            "visage: {cleaned}; dropped samples {}; summary {}; montages {}",
            summary.dropped_csv.display(),
            report.summary_json.display(),
            summary.montages.display()
        );
        Ok(())
    }
}
