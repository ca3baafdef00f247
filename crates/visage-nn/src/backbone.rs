//! [`Backbone`]: any of the networks, picked from a config.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::complexity::{count_params, Cost};
use crate::config::BackboneShape;
use crate::error::NnError;
use crate::iresnet::IResNet;
use crate::layers::ForwardHook;
use crate::mobilefacenet::MobileFaceNet;
use crate::state_dict::{expected_keys, load_state_dict, StateDict};

/// Any backbone, for code that picks one from a config. (The variants'
/// sizes differ, but a backbone is built once and moved rarely.)
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Backbone<B: Backend> {
    /// An IResNet (insightface or AdaFace layout).
    IResNet(IResNet<B>),
    /// A MobileFaceNet (insightface layout).
    MobileFaceNet(MobileFaceNet<B>),
}

impl<B: Backend> Backbone<B> {
    /// Normalised NCHW faces `[batch, 3, S, S]` → raw features `[batch, E]`
    /// (not L2-normalised). BatchNorm uses batch statistics on an autodiff
    /// backend and running statistics otherwise (see [`crate::Plain`]).
    pub fn forward(&self, faces: Tensor<B, 4>) -> Tensor<B, 2> {
        match self {
            Backbone::IResNet(network) => network.forward(faces),
            Backbone::MobileFaceNet(network) => network.forward(faces),
        }
    }

    /// [`Self::forward`] with every BatchNorm (and IResNet's dropout) run
    /// through `hook` (see [`ForwardHook`]).
    pub fn forward_hooked<H: ForwardHook<B>>(&self, faces: Tensor<B, 4>, hook: &mut H) -> Tensor<B, 2> {
        match self {
            Backbone::IResNet(network) => network.forward_hooked(faces, hook),
            Backbone::MobileFaceNet(network) => network.forward_hooked(faces, hook),
        }
    }

    /// Work of one forward pass of one `input_size`² face.
    pub fn cost(&self, input_size: usize) -> Cost {
        match self {
            Backbone::IResNet(network) => network.cost(input_size),
            Backbone::MobileFaceNet(network) => network.cost(input_size),
        }
    }

    /// Parameter count in PyTorch's convention (see [`complexity`](crate::complexity)).
    pub fn num_torch_params(&self, shape: &BackboneShape) -> u64 {
        let key = |path: &str| shape.torch_key(path);
        match self {
            Backbone::IResNet(network) => count_params(network, key),
            Backbone::MobileFaceNet(network) => count_params(network, key),
        }
    }

    /// Loads a reference state dict (keys as [`BackboneShape::torch_key`] maps
    /// them). The key sets must match exactly (all missing and unexpected
    /// keys are reported at once), then every shape.
    pub fn load_state_dict(self, shape: &BackboneShape, state: &StateDict) -> Result<Self, NnError> {
        let key = |path: &str| shape.torch_key(path);
        let expected = match &self {
            Backbone::IResNet(network) => expected_keys(network, key),
            Backbone::MobileFaceNet(network) => expected_keys(network, key),
        };
        state.check_keys(&expected)?;
        Ok(match self {
            Backbone::IResNet(network) => Backbone::IResNet(load_state_dict(network, state, key)?),
            Backbone::MobileFaceNet(network) => Backbone::MobileFaceNet(load_state_dict(network, state, key)?),
        })
    }
}
