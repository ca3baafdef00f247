//! PyTorch checkpoints (`.pth`, `.pt`, Lightning `.ckpt`) as `torch.save`
//! writes them since PyTorch 1.6: a zip archive with `<name>/data.pkl` (the
//! pickled object) and one raw little-endian file per storage,
//! `<name>/data/<key>`. Tensors are views into those storages (offset, size,
//! stride); a state dict's are contiguous, anything else is refused by key.
//!
//! The three families wrap their backbone weights differently:
//! - insightface `arcface_torch` saves the backbone's plain state dict
//!   (`module.` in front of every key when saved from DataParallel);
//! - MagFace saves `{'epoch', 'arch', 'state_dict', 'optimizer'}` with the
//!   backbone under `features.module.` (distributed trainer) or
//!   `module.features.` (DataParallel trainer) beside the MagLinear head
//!   (`fc.weight`, dropped here); its BatchNorms use ε = 2e-5 (see
//!   [`MAGFACE_BN_EPSILON`]);
//! - AdaFace's Lightning checkpoints keep `state_dict` with the backbone
//!   under `model.` beside the head (`head.kernel`, `head.t`, …, dropped).

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};
use visage_pickle::{Options, TensorRef, Value};

use crate::error::NnError;
use crate::iresnet::IResNetLayout;
use crate::layers::BN_EPSILON;
use crate::state_dict::{f16_to_f32, HostTensor, StateDict};
use crate::{Backbone, BackboneShape};

/// MagFace's `iresnet.py` builds every BatchNorm with `eps=2e-05`; the
/// networks here use PyTorch's 1e-5. Adding the difference to each running
/// variance on import makes `var + 1e-5` equal MagFace's `var + 2e-5`, so the
/// imported network computes MagFace's function exactly.
pub const MAGFACE_BN_EPSILON: f64 = 2e-5;

/// Who wrote the checkpoint, which says where the backbone's weights sit in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointFamily {
    /// Decide from the keys: `model.` → AdaFace, `features.module.` /
    /// `module.features.` → MagFace, otherwise a plain state dict.
    #[default]
    Auto,
    Insightface,
    Magface,
    Adaface,
}

impl CheckpointFamily {
    /// The IResNet layout (module tree) the family's backbones use.
    pub fn layout(self) -> Option<IResNetLayout> {
        match self {
            Self::Auto => None,
            Self::Insightface | Self::Magface => Some(IResNetLayout::Insightface),
            Self::Adaface => Some(IResNetLayout::Adaface),
        }
    }
}

impl fmt::Display for CheckpointFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Insightface => "insightface",
            Self::Magface => "magface",
            Self::Adaface => "adaface",
        })
    }
}

impl FromStr for CheckpointFamily {
    type Err = NnError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "insightface" | "arcface" => Ok(Self::Insightface),
            "magface" => Ok(Self::Magface),
            "adaface" => Ok(Self::Adaface),
            _ => Err(NnError::InvalidConfig {
                field: "family",
                problem: format!("must be auto, insightface, magface or adaface, got '{text}'"),
            }),
        }
    }
}

/// A checkpoint's backbone weights under the reference implementation's keys.
#[derive(Debug, Clone, PartialEq)]
pub struct PytorchCheckpoint {
    /// The family the weights were read as (never `Auto`).
    pub family: CheckpointFamily,
    /// Float tensors of the backbone, wrapper prefixes removed.
    pub state: StateDict,
    /// Keys left out because they are not the backbone's (margin-head
    /// weights, a MagLinear `fc.weight`), as they appear in the file.
    pub dropped_keys: Vec<String>,
}

/// Reads a `torch.save` zip archive and returns its backbone state dict.
pub fn read_pytorch_checkpoint(path: &Path, family: CheckpointFamily) -> Result<PytorchCheckpoint, NnError> {
    let format_error = |problem: String| NnError::Format { path: path.to_path_buf(), problem };
    let (root, mut tensors) = read_archive(path)?;
    let (wrapped, state_value) = match root.get("state_dict") {
        Some(inner @ Value::Dict(_)) => (true, inner),
        _ => (false, &root),
    };
    let Value::Dict(items) = state_value else {
        return Err(format_error(format!(
            "holds a pickled {} ({}), not a state dict; save `model.state_dict()` instead of the model",
            state_value.kind(),
            match state_value {
                Value::Object { callable } => callable.as_str(),
                _ => "no tensors",
            }
        )));
    };
    let mut all = Vec::new();
    for (key, value) in items {
        let (Value::Str(key), Value::Tensor(view)) = (key, value) else { continue };
        if let Some(tensor) = tensors.tensor(key, view).map_err(format_error)? {
            all.push((key.to_string(), tensor));
        }
    }
    if all.is_empty() {
        let where_ = if wrapped { "its `state_dict`" } else { "it" };
        return Err(format_error(format!("{where_} holds no float tensors")));
    }
    let family = match family {
        CheckpointFamily::Auto => detect_family(all.iter().map(|(key, _)| key.as_str())),
        given => given,
    };
    let (kept, dropped_keys) = select_backbone(all, family).map_err(format_error)?;
    let mut state = StateDict { tensors: kept.into_iter().collect() };
    if family == CheckpointFamily::Magface {
        let shift = (MAGFACE_BN_EPSILON - BN_EPSILON) as f32;
        for (key, tensor) in &mut state.tensors {
            if key.ends_with("running_var") {
                tensor.values.iter_mut().for_each(|variance| *variance += shift);
            }
        }
    }
    Ok(PytorchCheckpoint { family, state, dropped_keys })
}

/// Reads a checkpoint and loads it into a fresh backbone of `shape`, with the
/// strict key and shape checks of [`Backbone::load_state_dict`].
pub fn load_pytorch_checkpoint<B: Backend>(
    path: &Path,
    family: CheckpointFamily,
    shape: &BackboneShape,
    device: &B::Device,
) -> Result<Backbone<B>, NnError> {
    let checkpoint = read_pytorch_checkpoint(path, family)?;
    if let (Some(needed), BackboneShape::IResNet(config)) = (checkpoint.family.layout(), shape) {
        if config.layout != needed {
            return Err(NnError::InvalidConfig {
                field: "layout",
                problem: format!(
                    "{} holds a {} checkpoint, whose IResNet layout is `{needed}`; the model is configured with `{}`",
                    path.display(),
                    checkpoint.family,
                    config.layout
                ),
            });
        }
    }
    shape.init::<B>(device)?.load_state_dict(shape, &checkpoint.state).map_err(|error| match error {
        NnError::KeyMismatch { .. } | NnError::ShapeMismatch { .. } => NnError::Checkpoint {
            path: path.to_path_buf(),
            family: checkpoint.family.to_string(),
            source: Box::new(error),
        },
        other => other,
    })
}

fn detect_family<'a>(mut keys: impl Iterator<Item = &'a str> + Clone) -> CheckpointFamily {
    if keys.clone().any(|key| key.starts_with("model.")) {
        CheckpointFamily::Adaface
    } else if keys.any(|key| key.starts_with("features.module.") || key.starts_with("module.features.")) {
        CheckpointFamily::Magface
    } else {
        CheckpointFamily::Insightface
    }
}

type Tensors = Vec<(String, HostTensor)>;

/// Splits the tensors into the backbone's (prefix removed) and the rest.
fn select_backbone(all: Tensors, family: CheckpointFamily) -> Result<(Tensors, Vec<String>), String> {
    let prefixes: &[&str] = match family {
        CheckpointFamily::Magface => &["features.module.", "module.features."],
        CheckpointFamily::Adaface => &["model."],
        // DataParallel's `module.` only when every key has it.
        _ if all.iter().all(|(key, _)| key.starts_with("module.")) => &["module."],
        _ => &[""],
    };
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for (key, tensor) in all {
        match prefixes.iter().find_map(|prefix| key.strip_prefix(prefix)) {
            Some(inner) => kept.push((inner.to_string(), tensor)),
            None => dropped.push(key),
        }
    }
    if kept.is_empty() {
        return Err(format!(
            "no tensor key starts with {} (as a {family} checkpoint's backbone does); keys found: {}",
            prefixes.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(" or "),
            dropped.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok((kept, dropped))
}

/// The storages of an archive, read on demand.
struct Storages {
    path: PathBuf,
    archive: zip::ZipArchive<std::fs::File>,
    /// `<name>/` in front of every entry.
    prefix: String,
    cache: HashMap<String, Vec<u8>>,
}

fn read_archive(path: &Path) -> Result<(Value, Storages), NnError> {
    let format_error = |problem: String| NnError::Format { path: path.to_path_buf(), problem };
    let mut file = std::fs::File::open(path).map_err(|source| NnError::Io { path: path.to_path_buf(), source })?;
    let mut magic = [0u8; 4];
    let head = file.read(&mut magic).map_err(|source| NnError::Io { path: path.to_path_buf(), source })?;
    if head < 4 || &magic != b"PK\x03\x04" {
        let problem = if head >= 2 && magic[0] == 0x80 && magic[1] <= 5 {
            "is in the legacy (before PyTorch 1.6) torch.save format, not a zip archive; re-save it with a \
             current PyTorch: `torch.save(torch.load(old, weights_only=False), new)`"
        } else {
            "is not a PyTorch checkpoint (a torch.save zip archive starts with `PK`)"
        };
        return Err(format_error(problem.to_string()));
    }
    let file = std::fs::File::open(path).map_err(|source| NnError::Io { path: path.to_path_buf(), source })?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format_error(format!("unreadable zip archive (truncated?): {e}")))?;
    let pickle_name = archive
        .file_names()
        .filter(|name| name.ends_with("data.pkl") && name.matches('/').count() <= 1)
        .min_by_key(|name| name.len())
        .map(str::to_string)
        .ok_or_else(|| format_error("zip archive has no `data.pkl`: not written by torch.save".into()))?;
    let prefix = pickle_name[..pickle_name.len() - "data.pkl".len()].to_string();
    let read_entry = |archive: &mut zip::ZipArchive<std::fs::File>, name: &str| -> Result<Vec<u8>, NnError> {
        let mut entry = archive.by_name(name).map_err(|e| format_error(format!("entry `{name}`: {e}")))?;
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(|e| format_error(format!("entry `{name}` is damaged: {e}")))?;
        Ok(bytes)
    };
    if archive.file_names().any(|name| name == format!("{prefix}byteorder")) {
        let order = read_entry(&mut archive, &format!("{prefix}byteorder"))?;
        if order != b"little" {
            return Err(format_error(format!("storages are {} endian; only little endian is read", String::from_utf8_lossy(&order))));
        }
    }
    let pickled = read_entry(&mut archive, &pickle_name)?;
    let root = visage_pickle::parse(&pickled, Options::TORCH).map_err(|e| format_error(format!("`{pickle_name}`: {e}")))?;
    Ok((root, Storages { path: path.to_path_buf(), archive, prefix, cache: HashMap::new() }))
}

/// Bytes per element and whether the storage holds floats, by storage class.
fn storage_dtype(storage_type: &str) -> Option<(usize, bool)> {
    Some(match storage_type {
        "FloatStorage" => (4, true),
        "DoubleStorage" => (8, true),
        "HalfStorage" | "BFloat16Storage" => (2, true),
        "LongStorage" => (8, false),
        "IntStorage" => (4, false),
        "ShortStorage" => (2, false),
        "CharStorage" | "ByteStorage" | "BoolStorage" => (1, false),
        _ => return None,
    })
}

impl Storages {
    /// The tensor `key` as f32, or `None` for integer tensors (BatchNorm's
    /// `num_batches_tracked`), which are checked but not kept.
    fn tensor(&mut self, key: &str, view: &TensorRef) -> Result<Option<HostTensor>, String> {
        let storage = &view.storage;
        let Some((element_size, is_float)) = storage_dtype(&storage.storage_type) else {
            return Err(format!("tensor '{key}' has unsupported storage type {}", storage.storage_type));
        };
        let element_count: u64 = view.size.iter().product();
        // Row-major strides; dimensions of size 1 may carry any stride.
        let mut expected_stride = 1u64;
        for (&size, &stride) in view.size.iter().zip(&view.stride).rev() {
            if size > 1 && stride != expected_stride {
                return Err(format!(
                    "tensor '{key}' is not contiguous (size {:?}, stride {:?}); save `tensor.contiguous()`",
                    view.size, view.stride
                ));
            }
            expected_stride *= size;
        }
        let end = view.storage_offset + element_count;
        if end > storage.element_count {
            return Err(format!(
                "tensor '{key}' reads elements {}..{end} of a storage of {}",
                view.storage_offset, storage.element_count
            ));
        }
        let bytes = self.storage_bytes(&storage.key)?;
        let needed = storage.element_count as usize * element_size;
        if bytes.len() < needed {
            return Err(format!(
                "storage `data/{}` of tensor '{key}' has {} bytes, {needed} expected (truncated file?)",
                storage.key,
                bytes.len()
            ));
        }
        if !is_float {
            return Ok(None);
        }
        let raw = &bytes[view.storage_offset as usize * element_size..end as usize * element_size];
        let values: Vec<f32> = match storage.storage_type.as_str() {
            "FloatStorage" => raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            "DoubleStorage" => raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32).collect(),
            "HalfStorage" => raw.chunks_exact(2).map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect(),
            _ => raw.chunks_exact(2).map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)).collect(),
        };
        Ok(Some(HostTensor { shape: view.size.iter().map(|&n| n as usize).collect(), values }))
    }

    fn storage_bytes(&mut self, storage_key: &str) -> Result<&[u8], String> {
        if !self.cache.contains_key(storage_key) {
            let name = format!("{}data/{storage_key}", self.prefix);
            let mut entry = self.archive.by_name(&name).map_err(|e| format!("storage entry `{name}`: {e}"))?;
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(|e| format!("storage entry `{name}` of {} is damaged: {e}", self.path.display()))?;
            self.cache.insert(storage_key.to_string(), bytes);
        }
        Ok(&self.cache[storage_key])
    }
}
