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

#![warn(missing_docs)]

pub mod conv;

pub use conv::{conv2d, conv_path, with_conv_path, ConvPath, CONV_PATH_VARIABLE};
