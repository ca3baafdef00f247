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
    /// A fresh network; centres drawn from N(0, 0.01²) as arcface_torch does.
    pub fn init(shape: &BackboneShape, classes: usize, centres_per_class: usize, device: &B::Device) -> Result<Self> {
        let backbone = shape.init(device)?;
        let rows = classes * centres_per_class;
        let centres = Tensor::random([rows, shape.embedding_size()], Distribution::Normal(0.0, 0.01), device);
        let model = Self { backbone, centres: Param::from_tensor(centres) };
        model.visit(&mut Materialize);
        Ok(model)
    }
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
