//! What is trained: the backbone and the class centres of the head, as one
//! burn module so one optimiser and one checkpoint cover both.

use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Distribution, Tensor};
pub use visage_nn::with_backend_rng;
use visage_nn::{materialize, Backbone, BackboneShape};

use crate::error::Result;

/// The trained parameters: a checkpoint's `model.bin` is this module's record.
#[derive(Module, Debug)]
pub struct TrainModel<B: Backend> {
    /// The network: `N × 3 × S × S` images to `N × D` features.
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
            materialize(&model);
            Ok(model)
        })
    }
}
