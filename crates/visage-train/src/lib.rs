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
//! - [`clip`]: arcface_torch's gradient clipping, one L2 norm over the
//!   whole backbone;
//! - [`imprint`]: class centres started at the class means of a pretrained
//!   backbone's features, for fine-tuning;
//! - [`parallel`]: data-parallel steps over several workers/devices;
//! - [`distributed`]: the same across processes and machines, on
//!   burn-collective (`visage train --nodes N --node-rank R --coordinator HOST:PORT`);
//! - [`model_parallel`]: Partial FC with the class centres split across
//!   nodes (`[partial_fc] model_parallel = true`);
//! - [`checkpoint`]: model + optimiser + position + head state, written
//!   atomically, found again on resume;
//! - [`metrics`]: the per-step CSV log;
//! - [`trainer`]: the loop, resumable to the bit;
//! - [`verification`]: `.bin` sets evaluated every N steps;
//! - [`curves`]: a run's metrics.csv as charts and an HTML page;
//! - [`clean`]: sub-centre ArcFace cleaning: drop the samples far from their
//!   class's dominant sub-centre, write the cleaned dataset and reports;
//! - [`lgcn`]: L-GCN face clustering: the linkage network over pivot
//!   subgraphs, its training on real and synthetic identity mixtures, the
//!   bundled default model.
//!
//! The experiments built on the loop (the magnitude, cleaning and
//! fine-tuning demos) live in visage-lab.

#![warn(missing_docs)]

pub mod checkpoint;
pub mod clean;
pub mod clip;
pub mod config;
pub mod curves;
pub mod distributed;
pub mod error;
pub mod imprint;
pub mod lgcn;
pub mod metrics;
pub mod model;
pub mod model_parallel;
pub mod optimizer;
pub mod parallel;
pub mod schedule;
mod source;
mod step;
pub mod trainer;
pub mod verification;

pub use config::TrainConfig;
pub use error::TrainError;
pub use trainer::{train, train_with_verification, RunOptions, StepReport, TrainSummary};
