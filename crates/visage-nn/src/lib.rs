//! Face-recognition backbones for burn, generic over the backend: IResNet
//! (insightface and AdaFace layouts) and MobileFaceNet, with the mapping from
//! burn module paths to the reference implementations' PyTorch state-dict
//! keys, a state-dict loader, and parameter/FLOP counts.
//!
//! Every backbone takes normalised NCHW float faces (`[batch, 3, 112, 112]`;
//! the normalisation — channel order, mean, scale — is the model's setting,
//! applied by the caller) and returns raw features `[batch, E]`: not
//! L2-normalised, because their norm is the quality signal of MagFace and
//! AdaFace.

#![warn(missing_docs)]

mod arch;
mod backbone;
pub mod channelwise;
pub mod complexity;
mod config;
pub mod embed;
pub mod error;
mod info;
pub mod iresnet;
mod layers;
pub mod mobilefacenet;
pub mod onnx;
pub mod pytorch;
pub mod seeded;
pub mod state_dict;
mod weights;

pub use arch::Arch;
pub use backbone::Backbone;
pub use complexity::{count_params, Cost};
pub use config::{BackboneConfig, BackboneShape};
pub use error::NnError;
pub use info::ModelInfo;
pub use iresnet::{IResNet, IResNetConfig, IResNetLayout};
pub use layers::{ForwardHook, Plain};
pub use mobilefacenet::{MobileFaceNet, MobileFaceNetConfig};
pub use onnx::{load_onnx_weights, read_onnx_iresnet, read_onnx_mobilefacenet, state_dict_of};
pub use pytorch::{load_pytorch_checkpoint, read_pytorch_checkpoint, CheckpointFamily, PytorchCheckpoint};
pub use seeded::{materialize, with_backend_rng};
pub use state_dict::{expected_keys, load_state_dict, HostTensor, StateDict};
/// Which conv2d the backbones run on the CPU (`VISAGE_CONV=burn`: burn's own).
pub use visage_kernels::{conv_path, ConvPath, CONV_PATH_VARIABLE};
pub use weights::{load_network, load_weights, read_weights_config, save_weights, WEIGHTS_CONFIG_KEY};
