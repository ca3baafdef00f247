//! What is trained: the backbone and the class centres of the head, as one
//! burn module so one optimiser and one checkpoint cover both.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Distribution, Tensor};
use visage_nn::{Backbone, BackboneShape};

use crate::error::Result;

#[derive(Module, Debug)]
pub struct TrainModel<B: Backend> {
    pub backbone: Backbone<B>,
    /// `classes·K × D` centres (row `c·K + j` = sub-centre `j` of class `c`).
    pub centres: Param<Tensor<B, 2>>,
}

impl<B: Backend> TrainModel<B> {
    /// A fresh network drawn from `seed`; centres from N(0, 0.01²) as
    /// arcface_torch does. The same seed gives the same network, whatever
    /// else the process draws meanwhile.
    pub fn init(shape: &BackboneShape, classes: usize, centres_per_class: usize, seed: u64, device: &B::Device) -> Result<Self> {
        with_backend_rng::<B, _>(device, seed, || {
            let backbone = shape.init(device)?;
            let rows = classes * centres_per_class;
            let centres = Tensor::random([rows, shape.embedding_size()], Distribution::Normal(0.0, 0.01), device);
            let model = Self { backbone, centres: Param::from_tensor(centres) };
            model.visit(&mut Materialize);
            Ok(model)
        })
    }
}

/// Runs `draw` with the backend's random generator seeded to `seed` and
/// held for it alone.
///
/// The CPU backend has one generator per process: two runs in one process
/// (parallel tests, a sweep) would otherwise interleave their draws, or one
/// would reseed the other's mid-initialisation, and lose determinism. Every
/// seed and every draw from that generator in this crate goes through here.
pub fn with_backend_rng<B: Backend, T>(device: &B::Device, seed: u64, draw: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    B::seed(device, seed);
    draw()
}

/// burn initialises parameters lazily, on first use: the random draws would
/// happen in the first forward pass, wherever that runs. Touching every
/// parameter here makes them happen now, in module order, while the caller
/// holds the seeded generator.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}
