//! CPU kernels that replace slow paths of burn's `flex` backend without
//! changing what the model code calls.
//!
//! [`conv2d`] is a drop-in for `burn::tensor::module::conv2d`: on
//! `Autodiff<Flex>` (training on the CPU) and on `Flex` (inference) it runs
//! this crate's kernels, registered with burn's autodiff as one custom
//! operation whose backward pass computes the input and the weight gradient
//! together; on every other backend, and for shapes the kernels do not
//! cover, it is burn's own conv2d. `docs/perf/conv.md` has the design and the
//! measurements.
//!
//! [`channel::batch_norm_train`] and [`channel::prelu`] are training-mode
//! BatchNorm and PReLU on `Autodiff<Flex>`, each one custom autodiff op with
//! hand-written forward and backward passes (`visage_nn::channelwise` calls
//! them, and composes the same functions from tensor ops elsewhere).
//! `VISAGE_CONV=burn` turns every op of this crate off.

#![warn(missing_docs)]

pub mod channel;
pub mod conv;

pub use conv::{conv2d, conv_path, with_conv_path, with_winograd, ConvPath, CONV_PATH_VARIABLE, WINOGRAD_VARIABLE};
