//! `visage model …`: facts about the recognition backbones.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use visage_backend::Cpu;
use visage_nn::{Arch, Backbone, BackboneConfig, BackboneShape, CheckpointFamily, IResNetLayout, ModelInfo};

use super::Failure;

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Architecture, parameters, FLOPs, input shape and feature size of a backbone.
    ///
    /// FLOPs per 112×112 face follow insightface's published figures (ptflops):
    /// conv + FC multiply-accumulates plus BatchNorm, PReLU and bias elements;
    /// `macs` is the conv + FC part alone. Parameters count as PyTorch's
    /// `model.parameters()` (BatchNorm running statistics excluded).
    ///
    /// Example: visage model info iresnet50 --json
    Info(InfoArgs),
    /// Read pretrained weights (PyTorch `.pth`/`.pt`/`.ckpt` of insightface,
    /// MagFace or AdaFace; an ONNX model: IResNet or MobileFaceNet) into the
    /// burn backbone and write them as a visage weights file (`.safetensors`
    /// under the reference keys, the architecture in its header: usable as
    /// `[backbone] init_from` and by `visage model export`) or as ONNX.
    ///
    /// Example: visage model import models/arcface_mobileface_128d_paddle.onnx
    /// --arch mbf --width-scale 1 --embedding-size 128 --out paddle_mbf.safetensors
    Import(ImportArgs),
    /// Write an ONNX model (opset 13, input `data` [batch, 3, S, S], output
    /// `features` [batch, E]) of a `visage train` checkpoint (a checkpoint
    /// folder, or a run's out_dir for its newest one) or of a visage weights
    /// file from `visage model import`.
    ///
    /// Example: visage model export runs/faces-finetune-magface --out tuned.onnx
    Export(ExportArgs),
}

impl ModelCommand {
    pub fn run(&self) -> Result<(), Failure> {
        match self {
            Self::Info(args) => args.run(),
            Self::Import(args) => args.run(),
            Self::Export(args) => args.run(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The weights: `.pth`, `.pt`, `.ckpt` (PyTorch) or `.onnx`.
    file: PathBuf,
    /// Architecture the weights belong to (as `visage model info`).
    #[arg(long)]
    arch: String,
    /// Who wrote a PyTorch checkpoint: auto, insightface, magface or adaface.
    #[arg(long, default_value = "auto")]
    family: String,
    #[arg(long, default_value_t = 512)]
    embedding_size: usize,
    /// IResNet module tree and shortcut rule: insightface (also MagFace's) or adaface.
    #[arg(long, default_value = "insightface")]
    layout: String,
    /// MobileFaceNet width multiplier (insightface's `scale`): 1 for the
    /// paper's network (the Paddle ArcFace and faceplugin models); default the arch's own.
    #[arg(long)]
    width_scale: Option<usize>,
    /// Output: a `.safetensors` or `.onnx` file, or a folder (gets `backbone.safetensors`).
    #[arg(long)]
    out: PathBuf,
}

impl ImportArgs {
    fn run(&self) -> Result<(), Failure> {
        let bad_input = |error: visage_nn::NnError| Failure::bad_input(error.to_string());
        let arch: Arch = self.arch.parse().map_err(bad_input)?;
        let layout: IResNetLayout = self.layout.parse().map_err(bad_input)?;
        let family: CheckpointFamily = self.family.parse().map_err(bad_input)?;
        let config = BackboneConfig { embedding_size: self.embedding_size, layout, width_scale: self.width_scale, ..BackboneConfig::new(arch) };
        let shape = config.shape().map_err(bad_input)?;
        if !self.file.is_file() {
            return Err(Failure::bad_input(format!("{}: no such file", self.file.display())));
        }
        let backbone = visage_nn::load_weights::<Cpu>(&self.file, family, &shape, &Default::default())?;
        let out = if self.out.is_dir() { self.out.join("backbone.safetensors") } else { self.out.clone() };
        if has_extension(&out, "onnx") {
            write_onnx(&backbone, &shape, &out)?;
        } else if has_extension(&out, "safetensors") {
            visage_nn::save_weights(&backbone, &config, &out).map_err(Failure::from)?;
        } else {
            return Err(Failure::bad_input(format!("--out {}: expected a .safetensors or .onnx file, or an existing folder", out.display())));
        }
        let info = backbone.num_torch_params(&shape);
        eprintln!("{} ({info} parameters) from {} → {}", arch, self.file.display(), out.display());
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A `visage train` checkpoint folder (`state.json` + `model.bin`), a run's
    /// out_dir (its newest checkpoint), or a `.safetensors` from `visage model import`.
    input: PathBuf,
    /// The ONNX file to write.
    #[arg(long)]
    out: PathBuf,
}

impl ExportArgs {
    fn run(&self) -> Result<(), Failure> {
        let device = Default::default();
        let (backbone, shape) = if has_extension(&self.input, "safetensors") {
            let bad_input = |error: visage_nn::NnError| Failure::bad_input(error.to_string());
            let config = visage_nn::read_weights_config(&self.input)?;
            let shape = config.shape().map_err(bad_input)?;
            let backbone = visage_nn::load_weights::<Cpu>(&self.input, CheckpointFamily::Auto, &shape, &device)?;
            (backbone, shape)
        } else if self.input.is_dir() {
            let (backbone, state) = visage_train::checkpoint::load_backbone::<Cpu>(&self.input, &device).map_err(Failure::from)?;
            let shape = state.config.backbone.shape().map_err(Failure::bad_input)?;
            (backbone, shape)
        } else {
            return Err(Failure::bad_input(format!(
                "{}: expected a visage train checkpoint or run folder, or a .safetensors from `visage model import`",
                self.input.display()
            )));
        };
        write_onnx(&backbone, &shape, &self.out)?;
        eprintln!("{} → {}", self.input.display(), self.out.display());
        Ok(())
    }
}

fn has_extension(path: &Path, wanted: &str) -> bool {
    path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case(wanted))
}

fn write_onnx(backbone: &Backbone<Cpu>, shape: &BackboneShape, out: &Path) -> Result<(), Failure> {
    let bytes = backbone.to_onnx(shape).map_err(Failure::from)?;
    std::fs::write(out, bytes).map_err(|e| Failure::other(format!("cannot write {}: {e}", out.display())))
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// iresnet18, iresnet34, iresnet50, iresnet100, iresnet200 (or r18 … r200),
    /// mobilefacenet (mbf), mobilefacenet_large (mbf_large).
    arch: String,
    /// Length of the feature vector.
    #[arg(long, default_value_t = 512)]
    embedding_size: usize,
    /// IResNet module tree and shortcut rule: insightface (also MagFace's) or adaface.
    #[arg(long, default_value = "insightface")]
    layout: String,
    /// Print one JSON object (keys arch, layout, params, flops, macs, input_shape, feature_dim).
    #[arg(long)]
    json: bool,
}

impl InfoArgs {
    fn run(&self) -> Result<(), Failure> {
        let bad_input = |error: visage_nn::NnError| Failure::bad_input(error.to_string());
        let arch: Arch = self.arch.parse().map_err(bad_input)?;
        let layout: IResNetLayout = self.layout.parse().map_err(bad_input)?;
        let config = BackboneConfig { embedding_size: self.embedding_size, layout, ..BackboneConfig::new(arch) };
        let info = config.info::<Cpu>(&Default::default()).map_err(bad_input)?;
        if self.json {
            let text = serde_json::to_string(&info).map_err(|error| Failure::other(error.to_string()))?;
            println!("{text}");
        } else {
            print!("{}", table(&info));
        }
        Ok(())
    }
}

fn table(info: &ModelInfo) -> String {
    let [batch, channels, height, width] = info.input_shape;
    let layout = if info.arch.is_iresnet() { format!(" ({} layout)", info.layout) } else { String::new() };
    format!(
        "architecture  {}{layout}\n\
         parameters    {} ({:.2} M)\n\
         FLOPs         {} ({:.3} G; conv + FC MACs + BN + PReLU + bias, insightface's convention)\n\
         MACs          {} ({:.3} G; conv + FC only)\n\
         input         {batch} x {channels} x {height} x {width} (NCHW, float32, normalised per model)\n\
         feature dim   {}\n",
        info.arch,
        info.params,
        info.params as f64 / 1e6,
        info.flops,
        info.flops as f64 / 1e9,
        info.macs,
        info.macs as f64 / 1e9,
        info.feature_dim,
    )
}
