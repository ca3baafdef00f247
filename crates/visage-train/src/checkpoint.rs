//! Checkpoints: everything needed to continue a run exactly where it was.
//!
//! `out_dir/checkpoints/step-00001234/` holds `model.bin` (backbone +
//! centres, full precision), `optimizer.bin` (SGD momenta or AdamW moments) and `state.json` (steps
//! done, the head with AdaFace's running statistics, the config). It is
//! written as `.step-00001234.tmp/` and renamed into place, so a kill at any
//! moment leaves either the whole checkpoint or none of it; the newest
//! complete one is what a resume starts from. The data loader needs no
//! state: its batches are a pure function of (seed, epoch, batch index), and
//! the step count gives both.
//!
//! With the class centres split across nodes (`[partial_fc] model_parallel`)
//! every node writes its own checkpoint of the same step, holding the
//! backbone, its slice of centres and that slice's optimiser state: node 0
//! under `checkpoints/`, node `R` under `checkpoints/node-R/` (each atomic
//! as above), and `state.json` names the slice ([`CentreSlice`]). Nothing
//! is gathered, so no node ever holds every centre; a resume reads each
//! node's own newest checkpoint and refuses one written for another slice.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{BinFileRecorder, FullPrecisionSettings};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use visage_heads::MarginHead;

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::model::TrainModel;
use crate::optimizer::AnyOptimizer;

/// A checkpoint's `state.json`: where the loop stood, with what a resume
/// needs besides the weights and the optimiser's moments.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps taken so far (the next step's index).
    pub steps_done: u64,
    /// The margin head with its state (AdaFace's running mean and standard
    /// deviation of the feature norms; the other heads keep none).
    pub head: MarginHead,
    /// The config the run was started with; a resume must use the same.
    pub config: TrainConfig,
    /// The batch-mean loss of the last step before saving (NaN when no step
    /// ran since the run started or resumed).
    pub last_loss: f32,
    /// With the centres split across nodes, which of them `model.bin`
    /// holds; absent when it holds every centre of a plain run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centres: Option<CentreSlice>,
}

/// The classes a node's checkpoint holds when the centres are split across nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CentreSlice {
    /// The node that wrote it, `0..nodes`.
    pub node: usize,
    /// Nodes of the run.
    pub nodes: usize,
    /// Its first class.
    pub first_class: usize,
    /// Classes it holds.
    pub classes: usize,
    /// Classes of the run.
    pub total_classes: usize,
}

impl CentreSlice {
    /// Whether the slice is every class.
    pub fn is_whole(&self) -> bool {
        self.first_class == 0 && self.classes == self.total_classes
    }
}

const PREFIX: &str = "step-";

/// `out_dir/checkpoints`, where every `step-NNNNNNNN/` of a run lies.
pub fn checkpoints_dir(out_dir: &Path) -> PathBuf {
    out_dir.join("checkpoints")
}

/// Where node `node` writes its checkpoints when the centres are split:
/// `checkpoints/` for node 0, `checkpoints/node-R/` for the others.
pub fn node_checkpoints_dir(out_dir: &Path, node: usize) -> PathBuf {
    match node {
        0 => checkpoints_dir(out_dir),
        _ => checkpoints_dir(out_dir).join(format!("node-{node}")),
    }
}

/// The newest complete checkpoint under `out_dir`, if any.
pub fn latest(out_dir: &Path) -> Option<PathBuf> {
    latest_in(&checkpoints_dir(out_dir))
}

/// The newest complete `step-*` checkpoint in the folder `dir`, if any.
pub fn latest_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let step = path.file_name()?.to_str()?.strip_prefix(PREFIX)?.parse::<u64>().ok()?;
            path.join("state.json").is_file().then_some((step, path))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, path)| path)
}

/// Writes a checkpoint atomically and removes all but the newest `keep`.
pub fn save<B: AutodiffBackend>(
    out_dir: &Path,
    model: &TrainModel<B>,
    optimizer: &AnyOptimizer<TrainModel<B>, B>,
    state: &TrainState,
    keep: usize,
) -> Result<PathBuf> {
    save_in(&checkpoints_dir(out_dir), model, optimizer, state, keep)
}

/// [`save`] into the folder `dir` (a node's [`node_checkpoints_dir`]).
pub fn save_in<B: AutodiffBackend>(
    dir: &Path,
    model: &TrainModel<B>,
    optimizer: &AnyOptimizer<TrainModel<B>, B>,
    state: &TrainState,
    keep: usize,
) -> Result<PathBuf> {
    let dir = dir.to_path_buf();
    let name = format!("{PREFIX}{:08}", state.steps_done);
    let (temp, done) = (dir.join(format!(".{name}.tmp")), dir.join(&name));
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainError::Write { path, source }
    };
    let _ = std::fs::remove_dir_all(&temp);
    std::fs::create_dir_all(&temp).map_err(write_error(&temp))?;
    let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
    model
        .clone()
        .save_file(temp.join("model"), &recorder)
        .map_err(|e| TrainError::Checkpoint { path: temp.clone(), message: format!("cannot save the model: {e}") })?;
    optimizer.save(&temp.join("optimizer"))?;
    let json = serde_json::to_string_pretty(state).expect("state serialises");
    std::fs::write(temp.join("state.json"), json).map_err(write_error(&temp.join("state.json")))?;
    let _ = std::fs::remove_dir_all(&done);
    std::fs::rename(&temp, &done).map_err(write_error(&done))?;
    prune(&dir, keep);
    Ok(done)
}

/// Removes complete checkpoints beyond the newest `keep`.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut steps: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(PREFIX)))
        .collect();
    steps.sort();
    let surplus = steps.len().saturating_sub(keep);
    for old in &steps[..surplus] {
        let _ = std::fs::remove_dir_all(old);
    }
}

/// What [`load`] gives back: the model, its optimiser and the loop's state.
pub type Restored<B> = (TrainModel<B>, AnyOptimizer<TrainModel<B>, B>, TrainState);

/// Reads a checkpoint back into a model and optimiser of the same shape.
pub fn load<B: AutodiffBackend>(
    path: &Path,
    model: TrainModel<B>,
    optimizer: AnyOptimizer<TrainModel<B>, B>,
    device: &B::Device,
) -> Result<Restored<B>> {
    let state_path = path.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(|source| TrainError::Read { path: state_path.clone(), source })?;
    let state: TrainState =
        serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint { path: state_path.clone(), message: format!("invalid state: {e}") })?;
    let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
    let model = model
        .load_file(path.join("model"), &recorder, device)
        .map_err(|e| TrainError::Checkpoint { path: path.to_path_buf(), message: format!("cannot load the model: {e}") })?;
    let optimizer = optimizer.load(&path.join("optimizer"), device)?;
    Ok((model, optimizer, state))
}

/// The backbone of a checkpoint, for inference or export: `path` is a
/// checkpoint folder (with `state.json`) or a run's `out_dir` (its newest
/// checkpoint). The class centres are dropped, so the number of classes need
/// not be known. Returns the backbone and the run's state.
pub fn load_backbone<B: burn::tensor::backend::Backend>(path: &Path, device: &B::Device) -> Result<(visage_nn::Backbone<B>, TrainState)> {
    let (model, state, _) = load_any_model::<B>(path, device)?;
    Ok((model.backbone, state))
}

/// Backbone and class centres of a checkpoint without the optimiser, on any
/// backend (a non-autodiff one runs the network in eval mode): `path` is a
/// checkpoint folder or a run's `out_dir` (its newest checkpoint). burn
/// replaces a parameter by the record's tensor whatever its shape, so the
/// centres come back as saved (`classes·K × D`) without knowing the class
/// count first. Returns the model, the run's state and the checkpoint folder.
/// A node's checkpoint of a run whose centres were split across nodes holds
/// only its slice: [`TrainError::Checkpoint`] then ([`load_backbone`] still
/// reads its backbone).
pub fn load_model<B: burn::tensor::backend::Backend>(path: &Path, device: &B::Device) -> Result<(TrainModel<B>, TrainState, PathBuf)> {
    let (model, state, checkpoint) = load_any_model::<B>(path, device)?;
    match &state.centres {
        Some(slice) if !slice.is_whole() => Err(TrainError::Checkpoint {
            path: checkpoint,
            message: format!(
                "holds classes {}..{} of {} only: the run split its class centres over {} nodes ([partial_fc] model_parallel), each checkpointing its own slice; the backbone loads, the whole head does not",
                slice.first_class,
                slice.first_class + slice.classes,
                slice.total_classes,
                slice.nodes
            ),
        }),
        _ => Ok((model, state, checkpoint)),
    }
}

fn load_any_model<B: burn::tensor::backend::Backend>(path: &Path, device: &B::Device) -> Result<(TrainModel<B>, TrainState, PathBuf)> {
    let checkpoint = if path.join("state.json").is_file() {
        path.to_path_buf()
    } else {
        latest(path).ok_or_else(|| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: "no checkpoint here (expected a checkpoint folder with state.json, or a run folder with checkpoints/step-*/)".into(),
        })?
    };
    let state_path = checkpoint.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(|source| TrainError::Read { path: state_path.clone(), source })?;
    let state: TrainState =
        serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint { path: state_path.clone(), message: format!("invalid state: {e}") })?;
    let shape = state
        .config
        .backbone
        .shape()
        .map_err(|message| TrainError::Checkpoint { path: state_path.clone(), message: format!("[backbone] {message}") })?;
    let fresh = TrainModel::<B>::init(&shape, 1, 1, 0, device)?;
    let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
    let model = fresh
        .load_file(checkpoint.join("model"), &recorder, device)
        .map_err(|e| TrainError::Checkpoint { path: checkpoint.clone(), message: format!("cannot load the model: {e}") })?;
    Ok((model, state, checkpoint))
}
