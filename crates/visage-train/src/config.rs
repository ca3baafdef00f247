//! `train.toml`: everything a run is, so that the file plus the data is the
//! whole experiment. Defaults are insightface arcface_torch's (SGD, lr 0.1,
//! momentum 0.9, weight decay 5e-4, polynomial decay, flip only); MagFace
//! and AdaFace recipes use `schedule.kind = "step"`.
//!
//! ```toml
//! out_dir = "runs/r50-arcface"   # checkpoints/, metrics.csv (relative to this file)
//! epochs = 20
//! batch_size = 128
//! seed = 2048
//!
//! [backbone]                     # visage-nn: arch, embedding_size, dropout, layout,
//! arch = "iresnet50"             # and for small experiments stage_widths, stem_width,
//!                                # blocks_per_stage, input_size (IResNet only)
//! [head]                         # visage-heads: any kind of docs/spec/heads.md
//! kind = "arcface"
//! [partial_fc]                   # optional: sample the class centres
//! sample_rate = 0.1
//! model_parallel = false         # true: centres split across --nodes (arcface_torch's PartialFC_V2)
//!
//! [data]
//! source = "faces_emore/train.rec"   # a .rec, or a folder with one sub-folder per identity
//! normalization = "arcface"          # arcface | magface | adaface
//! threads = 4
//! flip = true
//!
//! [optimizer]
//! kind = "sgd"                   # sgd | adamw
//! lr = 0.1
//! momentum = 0.9
//! weight_decay = 5e-4
//!
//! [schedule]
//! kind = "poly"                  # poly | step
//! warmup_epochs = 0
//!
//! [checkpoint]
//! every_steps = 1000
//! keep = 2
//!
//! [parallel]                     # optional: shards of each batch on several workers
//! workers = 2
//!
//! [verification]                 # optional: the insightface protocol during training
//! sets = ["faces_emore/lfw.bin", "faces_emore/cfp_fp.bin"]
//! every_steps = 2000
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use visage_heads::{HeadConfig, PartialFcConfig};
use visage_image::{ModelFamily, Normalization};
use visage_nn::{Arch, BackboneConfig, BackboneShape, CheckpointFamily, IResNetLayout};

use crate::error::{Result, TrainError};
use crate::imprint::CentreInit;

/// A whole `train.toml`. Unknown keys are refused; [`TrainConfig::load`]
/// and [`TrainConfig::parse`] check the ranges. A checkpoint stores it, and
/// a resume must present an equal one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Where checkpoints and logs go (relative paths are relative to the config file).
    pub out_dir: PathBuf,
    /// Passes over the data, at least 1 (arcface_torch's MS1MV2 configs
    /// train 20, MagFace 25, AdaFace 26). Only full batches count: the
    /// run is `epochs × ⌊samples / batch_size⌋` steps.
    pub epochs: u64,
    /// Samples per optimiser step, split over the workers when there are
    /// several; default 128 (arcface_torch's per-GPU batch).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Seeds the network's initial draw, the shuffle and augmentation of
    /// every epoch and the dropout masks of every step; default 2048, as
    /// arcface_torch.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `[backbone]`: the network and where its weights start.
    pub backbone: BackboneSection,
    /// `[head]`: the margin head (`kind` plus its parameters, visage-heads'
    /// defaults for those left out). `subcenter` heads train K centres per class.
    pub head: HeadConfig,
    /// `[partial_fc]`: when present, each step's softmax covers every class
    /// of the batch plus a random sample of the others, `max(positives,
    /// ⌈sample_rate·C⌉)` centres (`sample_rate` default 0.1); the logged
    /// accuracy is then empty. With `model_parallel = true` each node holds
    /// only its slice of the centres and one head sees the whole batch's
    /// features ([`crate::model_parallel`]); `sample_rate = 1.0` then splits
    /// the full head without sampling.
    #[serde(default)]
    pub partial_fc: Option<PartialFcConfig>,
    /// `[data]`: the training images and how they are fed.
    pub data: DataSection,
    /// `[optimizer]`: SGD (default) or AdamW.
    #[serde(default)]
    pub optimizer: OptimizerSection,
    /// `[schedule]`: learning rate per step; default polynomial decay without warm-up.
    #[serde(default)]
    pub schedule: ScheduleSection,
    /// `[checkpoint]`: how often to save and how many to keep.
    #[serde(default)]
    pub checkpoint: CheckpointSection,
    /// Clip the backbone's gradients to this global L2 norm, as arcface_torch's
    /// `clip_grad_norm_(backbone.parameters(), 5)` (see [`crate::clip`]);
    /// positive; default none. The class centres are never clipped.
    #[serde(default)]
    pub grad_clip_norm: Option<f32>,
    /// `[verification]`: `.bin` sets evaluated during training; default none.
    #[serde(default)]
    pub verification: Option<VerificationSection>,
    /// `[parallel]`: workers per step; default one.
    #[serde(default)]
    pub parallel: ParallelSection,
    /// Where the class centres start: `random` (default) or `class_means`
    /// (imprinted from `init_from`'s features, for fine-tuning; see `imprint`).
    #[serde(default, skip_serializing_if = "is_random")]
    pub init_centres: CentreInit,
}

fn is_random(init: &CentreInit) -> bool {
    *init == CentreInit::Random
}

/// Data parallelism on one machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelSection {
    /// Workers that each take a shard of every batch: one per device when
    /// the backend has that many (GPUs `index, index + 1, …` from `--device`),
    /// otherwise threads sharing the device (the CPU). In 1..=`batch_size`;
    /// default 1. See [`crate::parallel`] for what differs from one worker.
    #[serde(default = "one")]
    pub workers: usize,
}

impl Default for ParallelSection {
    fn default() -> Self {
        Self { workers: 1 }
    }
}

fn one() -> usize {
    1
}

/// Verification sets evaluated during training (insightface `.bin` files).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationSection {
    /// `.bin` sets (relative paths are relative to the config file).
    pub sets: Vec<PathBuf>,
    /// Evaluate every this many steps (and at the end); at least 1, default
    /// 2000 (arcface_torch's `verbose`).
    #[serde(default = "default_verify_every")]
    pub every_steps: u64,
    /// Images per forward pass while evaluating; at least 1, default 64.
    #[serde(default = "default_verify_batch")]
    pub batch_size: usize,
}

fn default_verify_every() -> u64 {
    2000
}
fn default_verify_batch() -> usize {
    64
}

fn default_batch_size() -> usize {
    128
}

fn default_seed() -> u64 {
    2048
}

/// A visage-nn backbone, with the IResNet shape open to small experiments.
///
/// The first five fields are visage-nn's [`BackboneConfig`] ([`Self::network`]
/// gives it); they are repeated here rather than `#[serde(flatten)]`ed
/// because serde cannot combine `flatten` with `deny_unknown_fields`, and a
/// misspelt key in `train.toml` must be an error, not a silent default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneSection {
    /// The network: `iresnet18/34/50/100/200` (`r18` …) or `mobilefacenet`
    /// / `mobilefacenet_large` (`mbf`, `mbf_large`).
    pub arch: Arch,
    /// Length D of the feature (and of each class centre); default 512, as
    /// all three recipes.
    #[serde(default = "default_embedding_size")]
    pub embedding_size: usize,
    /// Dropout probability before the final FC layer, in [0, 1); default 0
    /// (arcface_torch's). Above 0, each step's masks are drawn from (seed,
    /// step), so a resumed run draws the same ones.
    #[serde(default)]
    pub dropout: f64,
    /// IResNet module tree: `insightface` (default; arcface_torch and
    /// MagFace) or `adaface` (AdaFace's `IR_*`).
    #[serde(default)]
    pub layout: IResNetLayout,
    /// MobileFaceNet's width multiplier (insightface's `scale`; 1 = the
    /// paper's network, the Paddle ArcFace model's): see visage-nn's `BackboneConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width_scale: Option<usize>,
    /// IResNet only: residual blocks in each of the four stages, replacing
    /// the arch's (e.g. `[1, 1, 1, 1]` for small experiments).
    #[serde(default)]
    pub blocks_per_stage: Option<[usize; 4]>,
    /// IResNet only: channels of the four stages (the arch's: 64, 128, 256, 512).
    #[serde(default)]
    pub stage_widths: Option<[usize; 4]>,
    /// IResNet only: channels of the stem convolution (the arch's: 64).
    #[serde(default)]
    pub stem_width: Option<usize>,
    /// IResNet only: side of the square input in pixels (the arch's: 112);
    /// the loader resizes every image to it.
    #[serde(default)]
    pub input_size: Option<usize>,
    /// Start from pretrained weights instead of a random draw: a PyTorch
    /// checkpoint (`.pth`, `.pt`, Lightning `.ckpt`) or an ONNX model
    /// (`.onnx`: IResNet, or MobileFaceNet such as the Paddle ArcFace model
    /// with `width_scale = 1`); relative to this file. Strictly checked against the shape above.
    #[serde(default)]
    pub init_from: Option<PathBuf>,
    /// Who wrote `init_from`: `auto` (from its keys), `insightface`, `magface` or `adaface`.
    #[serde(default)]
    pub init_family: CheckpointFamily,
}

fn default_embedding_size() -> usize {
    512
}

impl BackboneSection {
    /// The named network this section starts from (before the IResNet overrides).
    pub fn network(&self) -> BackboneConfig {
        BackboneConfig {
            arch: self.arch,
            embedding_size: self.embedding_size,
            dropout: self.dropout,
            layout: self.layout,
            width_scale: self.width_scale,
        }
    }

    /// The layer shapes this section describes: the arch's, with the IResNet
    /// overrides applied and checked. The error names what is wrong
    /// (an override on a MobileFaceNet, an invalid shape).
    pub fn shape(&self) -> std::result::Result<BackboneShape, String> {
        let shape = self.network().shape().map_err(|e| e.to_string())?;
        let overrides = self.blocks_per_stage.is_some() || self.stage_widths.is_some() || self.stem_width.is_some() || self.input_size.is_some();
        match shape {
            BackboneShape::IResNet(mut resnet) if overrides => {
                resnet.blocks_per_stage = self.blocks_per_stage.unwrap_or(resnet.blocks_per_stage);
                resnet.stage_widths = self.stage_widths.unwrap_or(resnet.stage_widths);
                resnet.stem_width = self.stem_width.unwrap_or(resnet.stem_width);
                resnet.input_size = self.input_size.unwrap_or(resnet.input_size);
                resnet.validate().map_err(|e| e.to_string())?;
                Ok(BackboneShape::IResNet(resnet))
            }
            BackboneShape::MobileFaceNet(_) if overrides => {
                Err("blocks_per_stage, stage_widths, stem_width and input_size apply to IResNet only".into())
            }
            shape => Ok(shape),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[data]`: where the training images come from and how they are fed.
pub struct DataSection {
    /// A RecordIO `.rec` (with its `.idx` beside it) or an image folder with
    /// one sub-folder per identity (labels in sorted folder order); relative
    /// to the config file.
    pub source: PathBuf,
    /// Pixel convention of the network's input; default `arcface`. Match the
    /// family of `init_from`'s weights when fine-tuning.
    #[serde(default)]
    pub normalization: NormalizationChoice,
    /// Decoding threads of the loader; default 2, at least 1 is used.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Random horizontal flip with probability 0.5 (every recipe uses it).
    #[serde(default = "yes")]
    pub flip: bool,
}

fn default_threads() -> usize {
    2
}

fn yes() -> bool {
    true
}

/// The three families' input conventions: insightface RGB `(x − 127.5)/127.5`,
/// MagFace BGR `x/255`, AdaFace BGR `(x/255 − 0.5)/0.5` as `visage_image::preprocess` defines them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormalizationChoice {
    /// RGB, `(x − 127.5) / 127.5` (insightface, arcface_torch).
    #[default]
    Arcface,
    /// BGR, `x / 255` (MagFace).
    Magface,
    /// BGR, `(x / 255 − 0.5) / 0.5` (AdaFace).
    Adaface,
}

impl NormalizationChoice {
    /// The channel order, mean and scale the loader applies.
    pub fn normalization(self) -> Normalization {
        let family = match self {
            Self::Arcface => ModelFamily::Arcface,
            Self::Magface => ModelFamily::Magface,
            Self::Adaface => ModelFamily::Adaface,
        };
        family.normalization()
    }
}

/// `[optimizer]`, tagged by `kind`: one optimiser for the backbone and the
/// class centres together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
pub enum OptimizerSection {
    /// PyTorch's SGD: `v ← μ·v + (g + λ·w)`, `w ← w − lr·v` (no dampening).
    /// The defaults are all three recipes'.
    Sgd {
        /// Peak learning rate (before the schedule scales it); positive, default 0.1.
        #[serde(default = "default_lr")]
        lr: f64,
        /// Momentum μ; default 0.9, 0 turns momentum off.
        #[serde(default = "default_momentum")]
        momentum: f64,
        /// L2 weight decay λ added to the gradient; default 5e-4, 0 turns it off.
        #[serde(default = "default_weight_decay")]
        weight_decay: f64,
    },
    /// AdamW (decoupled weight decay), PyTorch's defaults for betas and eps;
    /// lr and decay are arcface_torch's ViT configs'.
    Adamw {
        /// Peak learning rate; positive, default 1e-3.
        #[serde(default = "default_adamw_lr")]
        lr: f64,
        /// Decay of the first moment; default 0.9.
        #[serde(default = "default_beta1")]
        beta1: f32,
        /// Decay of the second moment; default 0.999.
        #[serde(default = "default_beta2")]
        beta2: f32,
        /// Added to the second moment's root; default 1e-8.
        #[serde(default = "default_eps")]
        eps: f32,
        /// Decoupled weight decay (`w ← w − lr·λ·w`); default 0.1.
        #[serde(default = "default_adamw_weight_decay")]
        weight_decay: f32,
    },
}

impl Default for OptimizerSection {
    fn default() -> Self {
        Self::Sgd { lr: default_lr(), momentum: default_momentum(), weight_decay: default_weight_decay() }
    }
}

impl OptimizerSection {
    /// The peak learning rate, whichever the optimiser.
    pub fn lr(&self) -> f64 {
        match self {
            Self::Sgd { lr, .. } | Self::Adamw { lr, .. } => *lr,
        }
    }
}

fn default_lr() -> f64 {
    0.1
}
fn default_momentum() -> f64 {
    0.9
}
fn default_weight_decay() -> f64 {
    5e-4
}
fn default_adamw_lr() -> f64 {
    1e-3
}
fn default_beta1() -> f32 {
    0.9
}
fn default_beta2() -> f32 {
    0.999
}
fn default_eps() -> f32 {
    1e-8
}
fn default_adamw_weight_decay() -> f32 {
    0.1
}

/// `[schedule]`, tagged by `kind`: how the learning rate moves over the
/// run (see [`crate::schedule::LrSchedule::lr`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
pub enum ScheduleSection {
    /// arcface_torch's `PolyScheduler`: linear warm-up, then `lr·(1 − progress)^power`.
    Poly {
        /// Epochs of linear warm-up from 0 (fractions allowed, rounded to
        /// steps); default 0, as arcface_torch's MS1MV2 configs.
        #[serde(default)]
        warmup_epochs: f64,
        /// Exponent of the decay; default 2, as arcface_torch.
        #[serde(default = "default_power")]
        power: f64,
    },
    /// MultiStepLR: ×`gamma` at each milestone epoch (MagFace 10/18/22, AdaFace 12/20/24).
    Step {
        /// Epochs (0-based) from which each drop applies; strictly increasing.
        milestones: Vec<u64>,
        /// Factor per milestone passed; default 0.1.
        #[serde(default = "default_gamma")]
        gamma: f64,
        /// Epochs of linear warm-up from 0 before the steps; default 0.
        #[serde(default)]
        warmup_epochs: f64,
    },
}

impl Default for ScheduleSection {
    fn default() -> Self {
        Self::Poly { warmup_epochs: 0.0, power: default_power() }
    }
}

fn default_power() -> f64 {
    2.0
}
fn default_gamma() -> f64 {
    0.1
}

/// `[checkpoint]`: when checkpoints are written and how many stay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSection {
    /// Save every this many steps (and always at the end); at least 1,
    /// default 1000. A resume restarts from the last one saved.
    #[serde(default = "default_every")]
    pub every_steps: u64,
    /// Checkpoints kept on disk (the newest); at least 1, default 2.
    #[serde(default = "default_keep")]
    pub keep: usize,
}

impl Default for CheckpointSection {
    fn default() -> Self {
        Self { every_steps: default_every(), keep: default_keep() }
    }
}

fn default_every() -> u64 {
    1000
}
fn default_keep() -> usize {
    2
}

impl TrainConfig {
    /// Reads and checks a config; relative paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| TrainError::Read { path: path.to_path_buf(), source })?;
        let mut config = Self::parse(&text).map_err(|message| TrainError::Config { path: path.to_path_buf(), message })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.out_dir = base.join(&config.out_dir);
        config.data.source = base.join(&config.data.source);
        config.backbone.init_from = config.backbone.init_from.map(|path| base.join(path));
        if let Some(verification) = &mut config.verification {
            verification.sets = verification.sets.iter().map(|set| base.join(set)).collect();
        }
        Ok(config)
    }

    /// Parses and validates TOML text (paths left as written).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.epochs == 0 {
            return Err("epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return Err("batch_size must be at least 1".into());
        }
        self.backbone.shape().map_err(|e| format!("[backbone] {e}"))?;
        self.head.validate().map_err(|e| format!("[head] {e}"))?;
        if self.optimizer.lr() <= 0.0 || !self.optimizer.lr().is_finite() {
            return Err(format!("[optimizer] lr = {} must be positive", self.optimizer.lr()));
        }
        if let ScheduleSection::Step { milestones, .. } = &self.schedule {
            if milestones.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("[schedule] milestones {milestones:?} must increase"));
            }
        }
        if self.checkpoint.every_steps == 0 || self.checkpoint.keep == 0 {
            return Err("[checkpoint] every_steps and keep must be at least 1".into());
        }
        if self.parallel.workers == 0 || self.parallel.workers > self.batch_size {
            return Err(format!("[parallel] workers = {} must lie in 1..=batch_size ({})", self.parallel.workers, self.batch_size));
        }
        if self.verification.as_ref().is_some_and(|v| v.every_steps == 0 || v.batch_size == 0) {
            return Err("[verification] every_steps and batch_size must be at least 1".into());
        }
        if self.partial_fc.is_some_and(|p| p.model_parallel) && matches!(self.head, HeadConfig::SvAm(_)) {
            return Err("[partial_fc] model_parallel: the svam head cannot split its class centres (its support vectors need the target cosine, which one node holds); use another head or model_parallel = false".into());
        }
        if self.grad_clip_norm.is_some_and(|c| !(c > 0.0)) {
            return Err("grad_clip_norm must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "out_dir = \"runs/x\"\nepochs = 3\n[backbone]\narch = \"iresnet18\"\n[head]\nkind = \"arcface\"\n[data]\nsource = \"train.rec\"\n";

    #[test]
    fn defaults_are_arcface_torchs() {
        let config = TrainConfig::parse(MINIMAL).unwrap();
        assert_eq!(config.batch_size, 128);
        assert_eq!(config.optimizer, OptimizerSection::Sgd { lr: 0.1, momentum: 0.9, weight_decay: 5e-4 });
        assert_eq!(config.schedule, ScheduleSection::Poly { warmup_epochs: 0.0, power: 2.0 });
        assert!(config.data.flip);
        assert_eq!(config.data.normalization.normalization(), Normalization::ARCFACE);
    }

    #[test]
    fn init_from_is_read_relative_to_the_config_file() {
        let dir = std::env::temp_dir().join(format!("visage-train-init-from-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = MINIMAL.replace("arch = \"iresnet18\"", "arch = \"iresnet18\"\ninit_from = \"weights/r18.pth\"\ninit_family = \"magface\"");
        std::fs::write(dir.join("train.toml"), text).unwrap();
        let config = TrainConfig::load(&dir.join("train.toml")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(config.backbone.init_from, Some(dir.join("weights/r18.pth")));
        assert_eq!(config.backbone.init_family, CheckpointFamily::Magface);
        assert_eq!(TrainConfig::parse(MINIMAL).unwrap().backbone.init_from, None);
        let bad = MINIMAL.replace("arch = \"iresnet18\"", "arch = \"iresnet18\"\ninit_family = \"facenet\"");
        assert!(TrainConfig::parse(&bad).unwrap_err().contains("facenet"));
    }

    #[test]
    fn errors_name_the_field() {
        let bad_head = MINIMAL.replace("kind = \"arcface\"", "kind = \"arcface\"\nm = -3.0");
        assert!(TrainConfig::parse(&bad_head).unwrap_err().starts_with("[head]"));
        let bad_steps = format!("{MINIMAL}[schedule]\nkind = \"step\"\nmilestones = [10, 5]\n");
        assert!(TrainConfig::parse(&bad_steps).unwrap_err().contains("milestones [10, 5] must increase"));
        let unknown = MINIMAL.replace("epochs = 3", "epochs = 3\nepoch = 4");
        assert!(TrainConfig::parse(&unknown).unwrap_err().contains("unknown field `epoch`"));
        let svam = MINIMAL.replace("arcface", "svam") + "[partial_fc]\nmodel_parallel = true\n";
        assert!(TrainConfig::parse(&svam).unwrap_err().contains("[partial_fc] model_parallel: the svam head"));
        let split = format!("{MINIMAL}[partial_fc]\nsample_rate = 1.0\nmodel_parallel = true\n");
        assert!(TrainConfig::parse(&split).unwrap().partial_fc.unwrap().model_parallel);
        let mobile = MINIMAL.replace("iresnet18", "mobilefacenet").replace("[head]", "stage_widths = [8, 8, 8, 8]\n[head]");
        assert!(TrainConfig::parse(&mobile).unwrap_err().contains("IResNet only"));
    }
}
