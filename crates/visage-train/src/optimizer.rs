//! The two optimisers of the recipes, configured as PyTorch defines them.
//!
//! burn's defaults differ from PyTorch's in ways that change training:
//! `MomentumConfig` dampens by 0.1 (PyTorch: 0) and AdamW's eps is 1e-5
//! (PyTorch: 1e-8); both are set explicitly here.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, MultiGradientsParams, Optimizer, Sgd, SgdConfig};
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;

use crate::config::OptimizerSection;
use crate::error::{Result, TrainError};

/// The optimiser a config names, over module `M`; its state (momenta or
/// moments) is saved in every checkpoint as `optimizer.bin`.
pub enum AnyOptimizer<M: AutodiffModule<B>, B: AutodiffBackend> {
    /// SGD with PyTorch's momentum (no dampening) and L2 weight decay.
    Sgd(OptimizerAdaptor<Sgd<B::InnerBackend>, M, B>),
    /// AdamW with decoupled weight decay.
    AdamW(OptimizerAdaptor<AdamW, M, B>),
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> AnyOptimizer<M, B> {
    /// Gradient clipping is not burn's (per parameter) but [`crate::clip`]'s
    /// global norm, applied by the trainer before [`Self::step`].
    pub fn new(section: &OptimizerSection) -> Self {
        match *section {
            OptimizerSection::Sgd { momentum, weight_decay, .. } => {
                let momentum = (momentum > 0.0).then_some(MomentumConfig { momentum, dampening: 0.0, nesterov: false });
                let decay = (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32));
                let config = SgdConfig::new().with_momentum(momentum).with_weight_decay(decay);
                Self::Sgd(config.init())
            }
            OptimizerSection::Adamw { beta1, beta2, eps, weight_decay, .. } => {
                let config = AdamWConfig::new().with_beta_1(beta1).with_beta_2(beta2).with_epsilon(eps).with_weight_decay(weight_decay);
                Self::AdamW(config.init())
            }
        }
    }

    /// One update of `module` with `grads` at learning rate `lr`.
    pub fn step(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        match self {
            Self::Sgd(optim) => optim.step(lr, module, grads),
            Self::AdamW(optim) => optim.step(lr, module, grads),
        }
    }

    /// One step with gradients gathered from several workers (summed onto
    /// each parameter's device).
    pub fn step_multi(&mut self, lr: f64, module: M, grads: MultiGradientsParams) -> M {
        match self {
            Self::Sgd(optim) => optim.step_multi(lr, module, grads),
            Self::AdamW(optim) => optim.step_multi(lr, module, grads),
        }
    }

    /// Saves the optimiser state (momenta) to `path` (+ `.bin`), full precision.
    pub fn save(&self, path: &Path) -> Result<()> {
        let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
        let saved = match self {
            Self::Sgd(optim) => recorder.record(optim.to_record(), path.to_path_buf()),
            Self::AdamW(optim) => recorder.record(optim.to_record(), path.to_path_buf()),
        };
        saved.map_err(|e| TrainError::Checkpoint { path: path.to_path_buf(), message: format!("cannot save the optimiser: {e}") })
    }

    /// This optimiser with the state saved at `path` (+ `.bin`) on `device`;
    /// [`TrainError::Checkpoint`] when the file is missing or does not hold
    /// this optimiser's state.
    pub fn load(self, path: &Path, device: &B::Device) -> Result<Self> {
        let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
        let fail =
            |e: burn::record::RecorderError| TrainError::Checkpoint { path: path.to_path_buf(), message: format!("cannot load the optimiser: {e}") };
        Ok(match self {
            Self::Sgd(optim) => Self::Sgd(optim.load_record(recorder.load(path.to_path_buf(), device).map_err(fail)?)),
            Self::AdamW(optim) => Self::AdamW(optim.load_record(recorder.load(path.to_path_buf(), device).map_err(fail)?)),
        })
    }
}
