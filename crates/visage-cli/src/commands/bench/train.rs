//! `visage bench train`: one training step (IResNet forward + ArcFace head +
//! backward + SGD) against PyTorch's on the same architecture and inputs,
//! measured in the same run.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use clap::Args;
use serde::Deserialize;
use visage_backend::{run_autodiff, AutodiffJob};
use visage_heads::{HeadConfig, MarginHead};
use visage_nn::{Arch, BackboneConfig};
use visage_train::config::OptimizerSection;
use visage_train::model::TrainModel;
use visage_train::optimizer::AnyOptimizer;

use super::{hashed_uniform, TorchArgs};
use crate::commands::Failure;

#[derive(Debug, Args)]
pub struct TrainBenchArgs {
    #[arg(long, default_value = "iresnet50")]
    arch: String,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 1000)]
    classes: usize,
    /// Timed steps (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[command(flatten)]
    torch: TorchArgs,
}

#[derive(Debug, Deserialize)]
struct StepTiming {
    loss: f64,
    median_s: f64,
    /// Peak resident memory of the process that ran the steps, MiB (Linux).
    #[serde(default)]
    peak_rss_mib: Option<f64>,
}

struct TimeStep<'a> {
    args: &'a TrainBenchArgs,
    arch: Arch,
}

impl AutodiffJob for TimeStep<'_> {
    type Output = Result<StepTiming, Failure>;

    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output {
        let (batch, classes) = (self.args.batch, self.args.classes);
        let fail = |e: &dyn std::fmt::Display| Failure::other(e.to_string());
        let shape = BackboneConfig::new(self.arch).shape().map_err(|e| fail(&e))?;
        let mut model = TrainModel::<B>::init(&shape, classes, 1, 0, device).map_err(|e| fail(&e))?;
        let mut head = MarginHead::new(serde_json::from_str::<HeadConfig>(r#"{"kind": "arcface"}"#).expect("valid head")).map_err(|e| fail(&e))?;
        let mut optimizer = AnyOptimizer::new(&OptimizerSection::Sgd { lr: 0.1, momentum: 0.9, weight_decay: 5e-4 });
        let pixels: Vec<f32> = hashed_uniform(batch, 3 * 112 * 112, 1).into_iter().map(|v| v * 2.0).collect();
        let images = Tensor::<B, 4>::from_data(TensorData::new(pixels, [batch, 3, 112, 112]), device);
        let labels: Vec<usize> = (0..batch).map(|i| i * 7919 % classes).collect();
        let (mut runs, mut first_loss) = (Vec::new(), None);
        for run in 0..=self.args.runs {
            let start = Instant::now();
            let output = head.forward(model.backbone.forward(images.clone()), model.centres.val(), &labels).map_err(|e| fail(&e))?;
            let loss: f64 = output.loss.clone().into_scalar().elem();
            let grads = GradientsParams::from_grads(output.loss.backward(), &model);
            model = optimizer.step(0.1, model, grads);
            // Reading a weight back makes sure the step was really computed.
            let _: f32 = model.centres.val().slice([0..1, 0..1]).into_scalar().elem();
            let elapsed = start.elapsed().as_secs_f64();
            first_loss.get_or_insert(loss);
            if run > 0 {
                runs.push(elapsed);
            }
        }
        runs.sort_by(f64::total_cmp);
        Ok(StepTiming { loss: first_loss.unwrap_or(f64::NAN), median_s: runs[runs.len() / 2], peak_rss_mib: peak_rss_mib() })
    }
}

/// This process's peak resident memory so far (`VmHWM`), MiB; `None` where
/// `/proc/self/status` does not exist.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

impl TrainBenchArgs {
    pub fn run(&self) -> Result<(), Failure> {
        if self.runs == 0 || self.batch < 2 || self.classes == 0 {
            return Err(Failure::bad_input("--runs and --classes must be ≥ 1, --batch ≥ 2"));
        }
        let arch: Arch = self.arch.parse().map_err(|e: visage_nn::NnError| Failure::bad_input(e.to_string()))?;
        let device = self.torch.device()?;
        // PyTorch first: once this process has run libtorch (`--device torch`),
        // its idle worker threads keep spinning and slow a child PyTorch by a third.
        let theirs = self.torch.torch_python.as_ref().map(|python| self.run_torch(python)).transpose()?;
        let ours = run_autodiff(device, TimeStep { args: self, arch }).map_err(Failure::from)??;
        println!("Training step: {} + ArcFace (C = {}), batch {}, 112×112, SGD; median of {} steps", arch, self.classes, self.batch, self.runs);
        if device == visage_backend::DeviceChoice::Cpu {
            let convolutions = match visage_nn::conv_path() {
                visage_nn::ConvPath::Kernels => format!("visage-kernels ({}=burn for burn's)", visage_nn::CONV_PATH_VARIABLE),
                visage_nn::ConvPath::Burn => format!("burn's ({}=burn)", visage_nn::CONV_PATH_VARIABLE),
            };
            println!("  convolutions: {convolutions}");
        }
        println!(
            "  visage ({})       {:>8.3} s/step  {:>7.1} img/s  first loss {:.4}",
            self.torch.device,
            ours.median_s,
            self.batch as f64 / ours.median_s,
            ours.loss
        );
        if let Some(theirs) = theirs {
            println!(
                "  PyTorch CPU ({} threads) {:>8.3} s/step  {:>7.1} img/s  first loss {:.4}",
                self.torch.torch_threads,
                theirs.median_s,
                self.batch as f64 / theirs.median_s,
                theirs.loss
            );
            println!("  speed: visage is {:.2}× PyTorch", theirs.median_s / ours.median_s);
            if let (Some(mine), Some(other)) = (ours.peak_rss_mib, theirs.peak_rss_mib) {
                println!("  peak memory: visage {mine:.0} MiB, PyTorch {other:.0} MiB ({:.2}× PyTorch's)", mine / other);
            }
        } else if let Some(mine) = ours.peak_rss_mib {
            println!("  peak memory: visage {mine:.0} MiB");
        }
        Ok(())
    }

    fn run_torch(&self, python: &PathBuf) -> Result<StepTiming, Failure> {
        let scripts = super::scripts::ReferenceScripts::new(self.torch.scripts_dir.as_deref())?;
        let script = scripts.path("bench/train_torch.py")?;
        let output = Command::new(python)
            .arg(&script)
            .args(["--arch", &self.arch, "--batch", &self.batch.to_string(), "--classes", &self.classes.to_string()])
            .args(["--runs", &self.runs.to_string(), "--threads", &self.torch.torch_threads.to_string()])
            .output()
            .map_err(|e| Failure::other(format!("running {} {}: {e}", python.display(), script.display())))?;
        if !output.status.success() {
            return Err(Failure::other(format!("the PyTorch reference failed:\n{}", String::from_utf8_lossy(&output.stderr))));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(text.trim()).map_err(|e| Failure::other(format!("PyTorch output `{text}`: {e}")))
    }
}
