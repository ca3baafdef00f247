//! `visage clean noise-demo --config SUBCENTER.toml --heldout DIR --out DIR`.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use visage_backend::{run_autodiff, AutodiffJob, DeviceChoice};
use visage_lab::clean_demo::{charts, run_noise_demo, NoiseDemoOptions, NoiseDemoResult};
use visage_train::clean::DEFAULT_MAX_ANGLE_DEG;
use visage_train::{TrainConfig, TrainError};

use crate::commands::Failure;

#[derive(Debug, Args)]
pub struct NoiseDemoArgs {
    /// A train.toml with a `subcenter` head whose data.source is the clean training folder
    /// (e.g. examples/train/digits_subcenter.toml); the ArcFace runs use the same settings with k = 1.
    #[arg(long, value_name = "TRAIN.toml")]
    config: PathBuf,
    /// Held-out images, one sub-folder per class (the training classes).
    #[arg(long, value_name = "DIR")]
    heldout: PathBuf,
    /// Fractions of training labels to flip (comma-separated); 0 is the noise-free reference.
    #[arg(long, value_delimiter = ',', default_value = "0,0.1,0.2,0.3,0.4")]
    fractions: Vec<f64>,
    /// Seed of the flips and of the held-out negative pairs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The cleaning threshold (degrees from the dominant sub-centre).
    #[arg(long, default_value_t = DEFAULT_MAX_ANGLE_DEG)]
    max_angle: f64,
    /// Where the noisy copies, runs, cleaned sets and results.json go.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Save the precision/recall chart here (.png or .svg).
    #[arg(long, value_name = "PNG|SVG")]
    detection_plot: Option<PathBuf>,
    /// Save the verification-accuracy chart here (.png or .svg).
    #[arg(long, value_name = "PNG|SVG")]
    verification_plot: Option<PathBuf>,
    /// cpu, cuda, cuda:N or torch (see `visage train --help`).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

struct DemoJob {
    options: NoiseDemoOptions,
}

impl AutodiffJob for DemoJob {
    type Output = Result<NoiseDemoResult, TrainError>;

    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output {
        let started = std::time::Instant::now();
        run_noise_demo::<B>(&self.options, device, |line| eprintln!("[{:>6.0} s] {line}", started.elapsed().as_secs_f64()))
    }
}

impl NoiseDemoArgs {
    pub fn run(&self) -> Result<(), Failure> {
        if self.fractions.iter().any(|f| !(0.0..1.0).contains(f)) {
            return Err(Failure::bad_input(format!("--fractions {:?}: each must lie in [0, 1)", self.fractions)));
        }
        let config = TrainConfig::load(&self.config).map_err(Failure::from)?;
        let options = NoiseDemoOptions {
            config,
            heldout: self.heldout.clone(),
            fractions: self.fractions.clone(),
            out_dir: self.out.clone(),
            seed: self.seed,
            max_angle_deg: self.max_angle,
        };
        let result = run_autodiff(self.device, DemoJob { options }).map_err(Failure::from)?.map_err(|e| match e {
            TrainError::Config { .. } | TrainError::Data(_) | TrainError::Read { .. } => Failure::bad_input(e.to_string()),
            other => Failure::other(other.to_string()),
        })?;
        let json_path = self.out.join("results.json");
        let json = serde_json::to_string_pretty(&result).expect("results serialise");
        visage_analyze::write_atomically(&json_path, json.as_bytes()).map_err(Failure::from)?;
        let (detection, verification) = charts(&result);
        for (chart, path) in [(&detection, &self.detection_plot), (&verification, &self.verification_plot)] {
            if let Some(path) = path {
                visage_eval::plot::save(chart, path).map_err(Failure::from)?;
            }
        }
        println!("| flipped | dropped | precision | recall | noise left | verif. sub-centre raw | verif. ArcFace raw | verif. ArcFace cleaned |");
        println!("|---|---|---|---|---|---|---|---|");
        for l in &result.levels {
            println!(
                "| {:.0} % ({}) | {} | {:.3} | {:.3} | {:.1} % | {:.4} | {:.4} | {:.4} |",
                100.0 * l.fraction,
                l.flipped,
                l.dropped,
                l.precision,
                l.recall,
                100.0 * l.noise_after_cleaning,
                l.verification_subcenter_raw,
                l.verification_arcface_raw,
                l.verification_arcface_cleaned
            );
        }
        eprintln!("visage: results {}", json_path.display());
        Ok(())
    }
}
