//! visage-train: the training loop of insightface's arcface_torch, MagFace
//! and AdaFace, in burn, generic over the backend.
//!
//! - [`config`]: the `train.toml` a run is described by (backbone, head,
//!   data, optimiser, schedule, checkpoints), with the recipes' defaults;
//! - [`schedule`]: learning rate per step (linear warm-up, then polynomial
//!   decay as arcface_torch or step drops as MagFace/AdaFace);
//! - [`model`]: backbone + class centres as one burn module;
//! - [`optimizer`]: SGD with momentum + weight decay, or AdamW, as PyTorch
//!   defines them;
//! - [`parallel`]: data-parallel steps over several workers/devices;
//! - [`checkpoint`]: model + optimiser + position + head state, written
//!   atomically, found again on resume;
//! - [`metrics`]: the per-step CSV log;
//! - [`trainer`]: the loop, resumable to the bit;
//! - [`verification`]: `.bin` sets evaluated every N steps;
//! - [`curves`]: a run's metrics.csv as charts and an HTML page;
//! - [`degrade`], [`magnitude_demo`]: MagFace's magnitude-as-quality claim
//!   tested on trained runs against blur, noise and occlusion;
//! - [`clean`]: sub-centre ArcFace cleaning: drop the samples far from their
//!   class's dominant sub-centre, write the cleaned dataset and reports;
//!   [`clean_demo`]: labels flipped on purpose, cleaning judged as noise
//!   detection and by the verification accuracy of runs on raw vs cleaned data.

pub mod checkpoint;
pub mod clean;
pub mod clean_demo;
pub mod clip;
pub mod config;
pub mod curves;
pub mod degrade;
pub mod error;
pub mod finetune_demo;
pub mod imprint;
pub mod magnitude_demo;
pub mod metrics;
pub mod model;
pub mod optimizer;
pub mod parallel;
pub mod schedule;
pub mod trainer;
pub mod verification;

pub use config::TrainConfig;
pub use error::TrainError;
pub use trainer::{train, train_with_verification, RunOptions, StepReport, TrainSummary};
