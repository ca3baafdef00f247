//! [`ModelInfo`]: an architecture's size and cost, as `visage model info`
//! reports them.

use burn::tensor::backend::Backend;
use serde::Serialize;

use crate::arch::Arch;
use crate::config::BackboneConfig;
use crate::error::NnError;
use crate::iresnet::IResNetLayout;

/// What `visage model info` reports about an architecture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// The architecture counted.
    pub arch: Arch,
    /// The config's layout (always insightface for a MobileFaceNet, which
    /// refuses the other); AdaFace's IResNet has fewer parameters and FLOPs.
    pub layout: IResNetLayout,
    /// Parameters, PyTorch's count (running statistics excluded).
    pub params: u64,
    /// FLOPs per face in insightface's (ptflops') convention: conv + FC
    /// multiply-accumulates plus BatchNorm, PReLU and bias elements.
    pub flops: u64,
    /// The conv + FC multiply-accumulates alone.
    pub macs: u64,
    /// `[1, 3, S, S]`, NCHW.
    pub input_shape: [usize; 4],
    /// Length E of the feature vector the network returns (`[1, E]` for `input_shape`).
    pub feature_dim: usize,
}

impl BackboneConfig {
    /// Builds the network lazily (no weights are drawn) and reads its counts.
    pub fn info<B: Backend>(&self, device: &B::Device) -> Result<ModelInfo, NnError> {
        let shape = self.shape()?;
        let network = shape.init::<B>(device)?;
        let cost = network.cost(shape.input_size());
        let side = shape.input_size();
        Ok(ModelInfo {
            arch: self.arch,
            layout: self.layout,
            params: network.num_torch_params(&shape),
            flops: cost.flops(),
            macs: cost.macs,
            input_shape: [1, 3, side, side],
            feature_dim: shape.embedding_size(),
        })
    }
}
