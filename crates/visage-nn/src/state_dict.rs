//! PyTorch-style state dicts on the host (key → shape + f32 values) and
//! loading them into a burn module through a key mapping
//! (`burn path → torch key`, e.g. [`crate::iresnet::insightface_key`]).
//!
//! The on-disk format read here is safetensors (what the reference script
//! and [`crate::save_weights`] write); the `.pth` reader
//! ([`crate::pytorch`]) and the ONNX import fill the same [`StateDict`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::error::NnError;

/// One tensor: row-major f32 values and their shape.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Dimensions, outermost first, as PyTorch stores them (a linear weight is `[out, in]`).
    pub shape: Vec<usize>,
    /// The elements in row-major order; the length is the product of `shape`.
    pub values: Vec<f32>,
}

/// A state dict's float tensors by key. Integer tensors (BatchNorm's
/// `num_batches_tracked`) carry nothing a forward pass needs and are dropped
/// on reading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateDict {
    /// Tensors by PyTorch state-dict key (`layer1.0.bn1.weight`), in key order.
    pub tensors: BTreeMap<String, HostTensor>,
}

impl StateDict {
    /// Reads a safetensors file (F32, F64, F16 or BF16 tensors become f32).
    pub fn read_safetensors(path: &Path) -> Result<Self, NnError> {
        let bytes = std::fs::read(path).map_err(|source| NnError::Io { path: path.to_path_buf(), source })?;
        Self::from_safetensors_bytes(&bytes, path)
    }

    /// Parses safetensors bytes; `path` only names the source in errors.
    ///
    /// Safe on any bytes: the safetensors crate refuses a header longer than
    /// the buffer (or than 100 MB), JSON it cannot parse (nesting included),
    /// and any tensor whose offsets leave the data or whose dtype × shape
    /// (a checked product) differs from its byte length, before a view
    /// exists; values are only ever converted out of those views.
    pub fn from_safetensors_bytes(bytes: &[u8], path: &Path) -> Result<Self, NnError> {
        let format_error = |problem: String| NnError::Format { path: path.to_path_buf(), problem };
        let file = SafeTensors::deserialize(bytes).map_err(|error| format_error(format!("not a safetensors file: {error}")))?;
        let mut tensors = BTreeMap::new();
        for (key, view) in file.tensors() {
            let raw = view.data();
            let values: Vec<f32> = match view.dtype() {
                Dtype::F32 => raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
                Dtype::F64 => raw.chunks_exact(8).map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32).collect(),
                Dtype::F16 => raw.chunks_exact(2).map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect(),
                Dtype::BF16 => raw.chunks_exact(2).map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)).collect(),
                Dtype::I64 | Dtype::I32 | Dtype::I16 | Dtype::I8 | Dtype::U8 | Dtype::BOOL => continue,
                other => return Err(format_error(format!("tensor '{key}' has unsupported dtype {other:?}"))),
            };
            tensors.insert(key, HostTensor { shape: view.shape().to_vec(), values });
        }
        Ok(Self { tensors })
    }

    /// The tensors as a safetensors file (F32, little-endian) with
    /// `metadata` (string pairs) in its header.
    pub fn to_safetensors_bytes(&self, metadata: std::collections::HashMap<String, String>) -> Result<Vec<u8>, NnError> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(key, tensor)| (key.clone(), tensor.shape.clone(), tensor.values.iter().flat_map(|v| v.to_le_bytes()).collect()))
            .collect();
        let invalid = |problem: String| NnError::InvalidConfig { field: "state dict", problem };
        let views = bytes
            .iter()
            .map(|(key, shape, data)| {
                safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)
                    .map(|view| (key.clone(), view))
                    .map_err(|e| invalid(format!("tensor '{key}': {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        safetensors::serialize(views, Some(metadata)).map_err(|e| invalid(format!("cannot serialise: {e}")))
    }

    /// The string pairs in a safetensors file's header (`__metadata__`).
    pub fn read_safetensors_metadata(path: &Path) -> Result<std::collections::HashMap<String, String>, NnError> {
        let bytes = std::fs::read(path).map_err(|source| NnError::Io { path: path.to_path_buf(), source })?;
        Self::safetensors_metadata_of(&bytes, path)
    }

    /// The string pairs in the header of safetensors bytes; `path` only names
    /// the source in errors.
    pub fn safetensors_metadata_of(bytes: &[u8], path: &Path) -> Result<std::collections::HashMap<String, String>, NnError> {
        let (_, metadata) = SafeTensors::read_metadata(bytes)
            .map_err(|error| NnError::Format { path: path.to_path_buf(), problem: format!("not a safetensors file: {error}") })?;
        Ok(metadata.metadata().clone().unwrap_or_default())
    }

    /// A copy with `prefix` removed from every key that has it (DataParallel's
    /// `module.`, MagFace's `features.module.`); other keys are kept as they are.
    pub fn strip_prefix(&self, prefix: &str) -> Self {
        let tensors = self.tensors.iter().map(|(key, tensor)| (key.strip_prefix(prefix).unwrap_or(key).to_string(), tensor.clone())).collect();
        Self { tensors }
    }
}

/// IEEE half → f32 (subnormals, infinities and NaN included).
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exponent = ((bits >> 10) & 0x1f) as u32;
    let mantissa = (bits & 0x3ff) as u32;
    match exponent {
        // subnormal: mantissa · 2^-24
        0 => {
            let magnitude = mantissa as f32 * 2f32.powi(-24);
            if sign == 0 {
                magnitude
            } else {
                -magnitude
            }
        }
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (mantissa << 13)),
        // rebias the exponent from 15 to 127
        _ => f32::from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13)),
    }
}

/// Replaces every parameter and BatchNorm running statistic of `module` with
/// the state-dict tensor its burn path maps to. Parameters `torch_key` maps
/// to `None` keep their values (fixed ones, such as AdaFace's affine-free
/// feature BN). Rank-2 tensors (linear weights) are transposed: PyTorch
/// stores `[out, in]`, burn `[in, out]`. Whether a parameter trains is kept
/// from the module (insightface's frozen feature-BN γ stays frozen).
///
/// Fails on the first missing key, shape mismatch or non-finite value, and
/// when float tensors remain that no parameter used.
pub fn load_state_dict<B: Backend, M: Module<B>>(module: M, state: &StateDict, torch_key: impl Fn(&str) -> Option<String>) -> Result<M, NnError> {
    struct Loader<'a, B: Backend, F> {
        state: &'a StateDict,
        device: B::Device,
        torch_key: F,
        path: Vec<String>,
        used: BTreeSet<String>,
        error: Option<NnError>,
    }

    impl<B: Backend, F> Loader<'_, B, F> {
        fn host_tensor(&mut self, key: &str, model_path: &str, expected: &[usize]) -> Result<(Vec<usize>, Vec<f32>), NnError> {
            let missing = || NnError::MissingTensor { key: key.to_string(), model_path: model_path.to_string() };
            let tensor = self.state.tensors.get(key).ok_or_else(missing)?;
            let transposed = expected.len() == 2;
            let torch_shape: Vec<usize> = if transposed { expected.iter().rev().copied().collect() } else { expected.to_vec() };
            if tensor.shape != torch_shape {
                return Err(NnError::ShapeMismatch {
                    key: key.to_string(),
                    model_path: model_path.to_string(),
                    expected: torch_shape,
                    found: tensor.shape.clone(),
                });
            }
            if tensor.values.iter().any(|value| !value.is_finite()) {
                return Err(NnError::NonFinite { key: key.to_string() });
            }
            self.used.insert(key.to_string());
            Ok((tensor.shape.clone(), tensor.values.clone()))
        }
    }

    impl<B: Backend, F: Fn(&str) -> Option<String>> ModuleMapper<B> for Loader<'_, B, F> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }

        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }

        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            if self.error.is_some() {
                return param;
            }
            let model_path = self.path.join(".");
            let Some(key) = (self.torch_key)(&model_path) else {
                return param;
            };
            let expected = param.lazy_shape().as_slice().to_vec();
            match self.host_tensor(&key, &model_path, &expected) {
                Ok((shape, values)) => {
                    let tensor = Tensor::<B, D>::from_data(TensorData::new(values, shape), &self.device);
                    let tensor = if D == 2 { tensor.transpose() } else { tensor };
                    let id = param.id;
                    param.transform_for_load(tensor, id)
                }
                Err(error) => {
                    self.error = Some(error);
                    param
                }
            }
        }
    }

    // Tensors are made on the module's device; `transform_for_load` would move them otherwise.
    let device = module.devices().into_iter().next().unwrap_or_default();
    let mut loader = Loader { state, device, torch_key, path: Vec::new(), used: BTreeSet::new(), error: None };
    let module = module.map(&mut loader);
    if let Some(error) = loader.error {
        return Err(error);
    }
    let unused: Vec<String> = state.tensors.keys().filter(|key| !loader.used.contains(key.as_str())).cloned().collect();
    if !unused.is_empty() {
        return Err(NnError::UnusedTensors { count: unused.len(), examples: unused.into_iter().take(5).collect() });
    }
    Ok(module)
}

/// The state-dict keys `module` needs, with their PyTorch shapes (rank-2
/// tensors transposed back to `[out, in]`), by the same mapping
/// [`load_state_dict`] uses.
pub fn expected_keys<B: Backend, M: Module<B>>(module: &M, torch_key: impl Fn(&str) -> Option<String>) -> BTreeMap<String, Vec<usize>> {
    struct Collector<F> {
        torch_key: F,
        path: Vec<String>,
        keys: BTreeMap<String, Vec<usize>>,
    }

    impl<B: Backend, F: Fn(&str) -> Option<String>> ModuleVisitor<B> for Collector<F> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }

        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }

        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(key) = (self.torch_key)(&self.path.join(".")) {
                let mut shape = param.lazy_shape().as_slice().to_vec();
                if D == 2 {
                    shape.reverse();
                }
                self.keys.insert(key, shape);
            }
        }
    }

    let mut collector = Collector { torch_key, path: Vec::new(), keys: BTreeMap::new() };
    module.visit(&mut collector);
    collector.keys
}

/// How many examples of missing/unexpected keys an error lists.
const KEY_EXAMPLES: usize = 5;

impl StateDict {
    /// Compares the key set with what a model needs: every missing and every
    /// unexpected key is counted (the first few named), so a checkpoint of
    /// another architecture reads as such in one error.
    pub fn check_keys(&self, expected: &BTreeMap<String, Vec<usize>>) -> Result<(), NnError> {
        let missing: Vec<String> = expected.keys().filter(|key| !self.tensors.contains_key(*key)).cloned().collect();
        let unexpected: Vec<String> = self.tensors.keys().filter(|key| !expected.contains_key(*key)).cloned().collect();
        if missing.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        Err(NnError::KeyMismatch {
            missing: missing.len(),
            missing_examples: missing.into_iter().take(KEY_EXAMPLES).collect(),
            unexpected: unexpected.len(),
            unexpected_examples: unexpected.into_iter().take(KEY_EXAMPLES).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn half_precision_values_convert_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }
}
