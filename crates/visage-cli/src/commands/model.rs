//! `visage model …`: facts about the recognition backbones.

use clap::{Args, Subcommand};
use visage_backend::Cpu;
use visage_nn::{Arch, BackboneConfig, IResNetLayout, ModelInfo};

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
}

impl ModelCommand {
    pub fn run(&self) -> Result<(), Failure> {
        match self {
            Self::Info(args) => args.run(),
        }
    }
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
