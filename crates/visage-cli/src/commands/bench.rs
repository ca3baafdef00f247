//! `visage bench …`: speed against the reference tool, measured in one run on
//! one machine, printed as ratios (never asserted in tests).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use burn::tensor::{backend::AutodiffBackend, ElementConversion, Tensor, TensorData};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use visage_backend::{run_autodiff, AutodiffJob, DeviceChoice};
use visage_heads::{HeadConfig, MarginHead};

use super::Failure;

mod accuracy;
mod gallery;
mod infer;
mod scripts;
mod train;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Forward + backward of the ArcFace, MagFace and AdaFace heads against PyTorch.
    Heads(HeadsBenchArgs),
    /// Recogniser throughput (img/s) at batch 1 and 8 against onnxruntime-python.
    Embed(infer::EmbedBenchArgs),
    /// `visage analyze` end to end (photos/s) against the Python reference pipeline.
    Analyze(infer::AnalyzeBenchArgs),
    /// Exact top-k gallery search against measured memory bandwidth; HNSW recall and speed.
    Gallery(gallery::GalleryBenchArgs),
    /// One training step (IResNet + ArcFace + SGD) against PyTorch on the same architecture.
    Train(train::TrainBenchArgs),
    /// Accuracy of detector × recogniser × setting chains on the shared real photo sets (docs/accuracy.md).
    Accuracy(accuracy::AccuracyBenchArgs),
}

impl BenchCommand {
    pub fn run(&self) -> Result<(), Failure> {
        match self {
            Self::Heads(args) => args.run(),
            Self::Embed(args) => args.run(),
            Self::Analyze(args) => args.run(),
            Self::Gallery(args) => args.run(),
            Self::Train(args) => args.run(),
            Self::Accuracy(args) => args.run(),
        }
    }
}

/// The PyTorch reference side of a benchmark and the device visage runs on.
#[derive(Debug, Args)]
pub struct TorchArgs {
    /// A Python with PyTorch for the reference side (scripts/bench/heads.sh installs one);
    /// without it only visage is timed.
    #[arg(long)]
    torch_python: Option<PathBuf>,
    /// CPU threads for PyTorch (match the cores visage uses).
    #[arg(long, default_value_t = 2)]
    torch_threads: usize,
    /// A folder laid out as the repository's scripts/ to run the reference
    /// from [default: the copies compiled into this binary].
    #[arg(long)]
    scripts_dir: Option<PathBuf>,
    /// cpu, cuda, cuda:N or torch (see `visage train --help`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl TorchArgs {
    fn device(&self) -> Result<DeviceChoice, Failure> {
        self.device.parse().map_err(|e: visage_backend::BackendError| Failure::bad_input(e.to_string()))
    }
}

#[derive(Debug, Args)]
pub struct HeadsBenchArgs {
    /// Class counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    classes: Vec<usize>,
    #[arg(long, default_value_t = 512)]
    batch: usize,
    #[arg(long, default_value_t = 512)]
    dim: usize,
    /// Timed runs per case (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Heads to measure.
    #[arg(long, value_delimiter = ',', default_value = "arcface,magface,adaface,svam")]
    heads: Vec<String>,
    #[command(flatten)]
    torch: TorchArgs,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// One measured case, in the same shape as the PyTorch script prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Timing {
    head: String,
    classes: usize,
    batch: usize,
    dim: usize,
    loss: f64,
    median_s: f64,
    runs_s: Vec<f64>,
}

/// `((i·73856093 ^ j·19349663 ^ seed·83492791) mod 2^32)/2^32 − 0.5`: inputs the
/// PyTorch script reproduces bit for bit, so both sides must report the same loss.
fn hashed_uniform(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut values = Vec::with_capacity(rows * cols);
    for i in 0..rows as u64 {
        for j in 0..cols as u64 {
            let h = ((i * 73_856_093) ^ (j * 19_349_663) ^ (seed * 83_492_791)) & 0xFFFF_FFFF;
            values.push((h as f64 / 4_294_967_296.0 - 0.5) as f32);
        }
    }
    values
}

struct TimeHead<'a> {
    args: &'a HeadsBenchArgs,
    head: HeadConfig,
    classes: usize,
}

impl AutodiffJob for TimeHead<'_> {
    type Output = Result<Timing, Failure>;

    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output {
        let (batch, dim, classes) = (self.args.batch, self.args.dim, self.classes);
        let features: Vec<f32> = hashed_uniform(batch, dim, 1).into_iter().map(|v| v * 3.0).collect();
        let features = Tensor::<B, 2>::from_data(TensorData::new(features, [batch, dim]), device);
        let centres = Tensor::<B, 2>::from_data(TensorData::new(hashed_uniform(classes, dim, 2), [classes, dim]), device);
        let labels: Vec<usize> = (0..batch).map(|i| i * 7919 % classes).collect();
        let mut head = MarginHead::new(self.head).map_err(Failure::from)?;
        let mut runs = Vec::with_capacity(self.args.runs);
        let mut loss = 0.0;
        for run in 0..=self.args.runs {
            let x = features.clone().require_grad();
            let w = centres.clone().require_grad();
            let start = Instant::now();
            let output = head.forward(x.clone(), w.clone(), &labels).map_err(Failure::from)?;
            let gradients = output.loss.backward();
            // Reading the gradients back makes sure they were really computed.
            let grad_w = w.grad(&gradients).expect("centres get a gradient").sum().into_scalar();
            let grad_x = x.grad(&gradients).expect("features get a gradient").sum().into_scalar();
            let elapsed = start.elapsed().as_secs_f64();
            std::hint::black_box((grad_w, grad_x));
            loss = output.loss.into_scalar().elem::<f64>();
            if run > 0 {
                runs.push(elapsed);
            }
        }
        runs.sort_by(f64::total_cmp);
        Ok(Timing { head: self.head.kind().to_string(), classes, batch, dim, loss, median_s: runs[runs.len() / 2], runs_s: runs })
    }
}

impl HeadsBenchArgs {
    fn run(&self) -> Result<(), Failure> {
        if self.runs == 0 || self.batch < 2 {
            return Err(Failure::bad_input("--runs must be ≥ 1 and --batch ≥ 2"));
        }
        let device = self.torch.device()?;
        let mut ours = Vec::new();
        for &classes in &self.classes {
            for name in &self.heads {
                let head: HeadConfig =
                    serde_json::from_value(serde_json::json!({ "kind": name })).map_err(|e| Failure::bad_input(format!("--heads {name}: {e}")))?;
                let timing = run_autodiff(device, TimeHead { args: self, head, classes }).map_err(Failure::from)??;
                eprintln!("visage  {:<8} C={:<7} {:.3} s", timing.head, classes, timing.median_s);
                ours.push(timing);
            }
        }
        let reference = match &self.torch.torch_python {
            Some(python) => self.run_torch(python)?,
            None => Vec::new(),
        };
        self.report(&ours, &reference);
        Ok(())
    }

    fn run_torch(&self, python: &PathBuf) -> Result<Vec<Timing>, Failure> {
        let scripts = scripts::ReferenceScripts::new(self.torch.scripts_dir.as_deref())?;
        let script = scripts.path("bench/heads_torch.py")?;
        let join = |v: Vec<String>| v.join(",");
        let output = Command::new(python)
            .arg(&script)
            .args(["--classes", &join(self.classes.iter().map(ToString::to_string).collect())])
            .args(["--batch", &self.batch.to_string(), "--dim", &self.dim.to_string()])
            .args(["--runs", &self.runs.to_string(), "--threads", &self.torch.torch_threads.to_string()])
            .args(["--heads", &join(self.heads.clone())])
            .output()
            .map_err(|e| Failure::other(format!("running {} {}: {e}", python.display(), script.display())))?;
        if !output.status.success() {
            return Err(Failure::other(format!("the PyTorch reference failed:\n{}", String::from_utf8_lossy(&output.stderr))));
        }
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).map_err(|e| Failure::other(format!("PyTorch output `{line}`: {e}"))))
            .collect()
    }

    fn report(&self, ours: &[Timing], reference: &[Timing]) {
        if self.json {
            for t in ours {
                println!("{}", serde_json::json!({"tool": "visage", "timing": t}));
            }
            for t in reference {
                println!("{}", serde_json::json!({"tool": "pytorch", "timing": t}));
            }
            return;
        }
        println!(
            "Head forward + backward, B = {}, D = {}, median of {} runs (visage {} vs PyTorch CPU, {} threads)",
            self.batch, self.dim, self.runs, self.torch.device, self.torch.torch_threads
        );
        println!("  {:<8} {:>8} {:>11} {:>11} {:>13} {:>12}", "head", "classes", "visage s", "pytorch s", "speed-up ×", "|Δloss|/loss");
        for t in ours {
            let other = reference.iter().find(|r| r.head == t.head && r.classes == t.classes);
            match other {
                Some(r) => println!(
                    "  {:<8} {:>8} {:>11.3} {:>11.3} {:>13.2} {:>12.1e}",
                    t.head,
                    t.classes,
                    t.median_s,
                    r.median_s,
                    r.median_s / t.median_s,
                    (t.loss - r.loss).abs() / r.loss.abs()
                ),
                None => println!("  {:<8} {:>8} {:>11.3} {:>11} {:>13} {:>12}", t.head, t.classes, t.median_s, "-", "-", "-"),
            }
        }
    }
}
