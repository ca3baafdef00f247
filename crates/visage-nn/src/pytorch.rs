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
//!
//! Every number in the archive is outside input. An entry is read only
//! after its declared size is checked against its stored bytes, the pickle
//! goes through the bounded reader of `visage_pickle`, and each tensor's
//! size, offset and storage length are checked products and sums compared
//! with the storage entry's real length before a value is converted.

use std::collections::HashMap;
use std::fmt;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;
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
    /// insightface `arcface_torch`: the backbone's own keys (`module.`
    /// stripped when every key has it). Also parsed from `arcface`.
    Insightface,
    /// MagFace: the backbone under `features.module.` or `module.features.`
    /// (other keys dropped); 1e-5 is added to every running variance for
    /// MagFace's BatchNorm ε of 2e-5. IResNet insightface layout.
    Magface,
    /// AdaFace's Lightning `.ckpt`: the backbone under `model.` (the head's
    /// keys dropped); needs the `adaface` IResNet layout.
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
            _ => Err(NnError::InvalidConfig { field: "family", problem: format!("must be auto, insightface, magface or adaface, got '{text}'") }),
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
    let io_error = |source| NnError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io_error)?;
    let mut magic = [0u8; 4];
    let head = read_head(&mut file, &mut magic).map_err(io_error)?;
    check_magic(&magic[..head], path)?;
    let archive_len = file.metadata().map_err(io_error)?.len();
    file.seek(SeekFrom::Start(0)).map_err(io_error)?;
    checkpoint_from_archive(file, archive_len, path, family)
}

/// [`read_pytorch_checkpoint`] of an archive held in memory; `path` only
/// names the source in errors. Every problem of the bytes is an
/// [`NnError::Format`] naming `path` and, where there is one, the archive
/// entry or the tensor key.
pub fn read_pytorch_checkpoint_bytes(bytes: &[u8], path: &Path, family: CheckpointFamily) -> Result<PytorchCheckpoint, NnError> {
    check_magic(&bytes[..bytes.len().min(4)], path)?;
    checkpoint_from_archive(Cursor::new(bytes), bytes.len() as u64, path, family)
}

/// Fills `magic` from the start of `file` (fewer bytes for a shorter file).
fn read_head(file: &mut std::fs::File, magic: &mut [u8; 4]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < magic.len() {
        match file.read(&mut magic[filled..])? {
            0 => break,
            count => filled += count,
        }
    }
    Ok(filled)
}

/// A zip archive starts with a local file header, `PK\x03\x04`; a legacy
/// `torch.save` file with a pickle's PROTO opcode.
fn check_magic(head: &[u8], path: &Path) -> Result<(), NnError> {
    if head == b"PK\x03\x04" {
        return Ok(());
    }
    let problem = if head.len() >= 2 && head[0] == 0x80 && head[1] <= 5 {
        "is in the legacy (before PyTorch 1.6) torch.save format, not a zip archive; re-save it with a \
         current PyTorch: `torch.save(torch.load(old, weights_only=False), new)`"
    } else {
        "is not a PyTorch checkpoint (a torch.save zip archive starts with `PK`)"
    };
    Err(NnError::Format { path: path.to_path_buf(), problem: problem.to_string() })
}

fn checkpoint_from_archive<R: Read + Seek>(reader: R, archive_len: u64, path: &Path, family: CheckpointFamily) -> Result<PytorchCheckpoint, NnError> {
    let format_error = |problem: String| NnError::Format { path: path.to_path_buf(), problem };
    let (root, mut tensors) = read_archive(reader, archive_len, path)?;
    let (wrapped, state_value) = match root.get("state_dict") {
        Some(inner @ Value::Dict(_)) => (true, inner),
        _ => (false, &root),
    };
    let Value::Dict(items) = state_value else {
        return Err(format_error(format!(
            "holds a pickled {} ({}), not a state dict; save `model.state_dict()` instead of the model",
            state_value.kind(),
            match state_value {
                Value::Object { callable } => &**callable,
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
        NnError::KeyMismatch { .. } | NnError::ShapeMismatch { .. } => {
            NnError::Checkpoint { path: path.to_path_buf(), family: checkpoint.family.to_string(), source: Box::new(error) }
        }
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

/// The most a compressed entry may expand. `torch.save` stores every entry
/// uncompressed; an archive re-packed with compression holds float weights,
/// which barely compress (and pickle text, about 5 to 1). DEFLATE itself
/// allows 1032 to 1, which would let a 2 MB archive fill 2 GB.
const MAX_INFLATION: u64 = 16;

/// The storages of an archive, read on demand.
struct Storages<R> {
    archive: zip::ZipArchive<R>,
    archive_len: u64,
    /// `<name>/` in front of every entry.
    prefix: String,
    cache: HashMap<String, Vec<u8>>,
    /// Float elements decoded so far, and the bytes of the storages read:
    /// the first may not exceed the second (see [`Storages::tensor`]).
    decoded: u64,
    stored: u64,
}

/// The bytes of entry `name`, checked against what the archive holds before
/// anything is allocated: its stored bytes lie inside the archive, and its
/// declared size is one those bytes can give (at most their number for a
/// stored entry, [`MAX_INFLATION`] times it for a compressed one). Reading
/// stops one byte past the declared size, so a lying header costs nothing.
fn read_entry<R: Read + Seek>(archive: &mut zip::ZipArchive<R>, archive_len: u64, name: &str) -> Result<Vec<u8>, String> {
    let mut entry = archive.by_name(name).map_err(|e| format!("entry `{name}`: {e}"))?;
    let (declared, stored) = (entry.size(), entry.compressed_size());
    if stored > archive_len {
        return Err(format!("entry `{name}` declares {stored} stored bytes, the archive has {archive_len}"));
    }
    if entry.compression() == zip::CompressionMethod::Stored {
        if declared > stored {
            return Err(format!("entry `{name}` declares {declared} bytes, more than its {stored} stored bytes can hold"));
        }
    } else if declared > stored.saturating_mul(MAX_INFLATION).saturating_add(4096) {
        return Err(format!(
            "entry `{name}` declares {declared} bytes, more than {MAX_INFLATION} times its {stored} compressed bytes \
             (torch.save stores entries uncompressed: re-save the checkpoint with torch.save)"
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(declared.min(archive_len)).unwrap_or(0));
    (&mut entry).take(declared.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| format!("entry `{name}` is damaged: {e}"))?;
    if bytes.len() as u64 != declared {
        return Err(format!("entry `{name}` holds {} bytes, its header says {declared}", bytes.len()));
    }
    Ok(bytes)
}

fn read_archive<R: Read + Seek>(reader: R, archive_len: u64, path: &Path) -> Result<(Value, Storages<R>), NnError> {
    let format_error = |problem: String| NnError::Format { path: path.to_path_buf(), problem };
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| format_error(format!("unreadable zip archive (truncated?): {e}")))?;
    let pickle_name = archive
        .file_names()
        .filter(|name| name.ends_with("data.pkl") && name.matches('/').count() <= 1)
        .min_by_key(|name| name.len())
        .map(str::to_string)
        .ok_or_else(|| format_error("zip archive has no `data.pkl`: not written by torch.save".into()))?;
    let prefix = pickle_name[..pickle_name.len() - "data.pkl".len()].to_string();
    let byteorder = format!("{prefix}byteorder");
    if archive.file_names().any(|name| name == byteorder) {
        let order = read_entry(&mut archive, archive_len, &byteorder).map_err(format_error)?;
        if order != b"little" {
            let shown: String = String::from_utf8_lossy(&order).chars().take(20).collect();
            return Err(format_error(format!("storages are {shown} endian; only little endian is read")));
        }
    }
    let pickled = read_entry(&mut archive, archive_len, &pickle_name).map_err(format_error)?;
    let root = visage_pickle::parse(&pickled, Options::TORCH).map_err(|e| format_error(format!("`{pickle_name}`: {e}")))?;
    Ok((root, Storages { archive, archive_len, prefix, cache: HashMap::new(), decoded: 0, stored: 0 }))
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

impl<R: Read + Seek> Storages<R> {
    /// The tensor `key` as f32, or `None` for integer tensors (BatchNorm's
    /// `num_batches_tracked`), which are checked but not kept.
    ///
    /// Every size is outside input: products and sums are checked, the
    /// storage's declared byte length is compared with its entry's real one
    /// before a value is read, and the float elements decoded over all
    /// tensors may not exceed the bytes of the storages read. Each float
    /// element takes 2 bytes or more in its storage, so that leaves every
    /// storage room to be viewed twice (tied weights) while views that
    /// overlap a thousand times over are refused instead of filling memory.
    fn tensor(&mut self, key: &str, view: &TensorRef) -> Result<Option<HostTensor>, String> {
        let storage = &view.storage;
        let entry = format!("{}data/{}", self.prefix, storage.key);
        let Some((element_size, is_float)) = storage_dtype(&storage.storage_type) else {
            return Err(format!("tensor '{key}' has unsupported storage type {}", storage.storage_type));
        };
        let too_big = || format!("tensor '{key}': size {:?} has more elements than any storage can hold", view.size);
        let element_count = view.size.iter().try_fold(1u64, |count, &size| count.checked_mul(size)).ok_or_else(too_big)?;
        // Row-major strides; dimensions of size 1 may carry any stride.
        let mut expected_stride = 1u64;
        for (&size, &stride) in view.size.iter().zip(&view.stride).rev() {
            if size > 1 && stride != expected_stride {
                return Err(format!("tensor '{key}' is not contiguous (size {:?}, stride {:?}); save `tensor.contiguous()`", view.size, view.stride));
            }
            expected_stride = expected_stride.saturating_mul(size);
        }
        let end = view.storage_offset.checked_add(element_count).ok_or_else(too_big)?;
        if end > storage.element_count {
            return Err(format!("tensor '{key}' reads elements {}..{end} of a storage of {}", view.storage_offset, storage.element_count));
        }
        let needed = storage.element_count.checked_mul(element_size as u64).ok_or_else(|| {
            format!(
                "storage `{entry}` of tensor '{key}' declares {} elements of {element_size} bytes: no file holds that many",
                storage.element_count
            )
        })?;
        let bytes_len = self.storage_bytes(&storage.key)?.len() as u64;
        if bytes_len < needed {
            return Err(format!("storage `{entry}` of tensor '{key}' has {bytes_len} bytes, {needed} expected (truncated file?)"));
        }
        if is_float {
            self.decoded = self.decoded.saturating_add(element_count);
            if self.decoded > self.stored {
                return Err(format!(
                    "tensor '{key}': the tensors read so far hold {} elements, more than their storages' {} bytes can \
                     (views that overlap many times over)",
                    self.decoded, self.stored
                ));
            }
        }
        let bytes = &self.cache[&storage.key];
        if !is_float {
            return Ok(None);
        }
        // in range: end ≤ element_count, and element_count · element_size = needed ≤ bytes.len()
        let raw = &bytes[view.storage_offset as usize * element_size..end as usize * element_size];
        let values: Vec<f32> = match storage.storage_type.as_str() {
            "FloatStorage" => raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            "DoubleStorage" => raw.chunks_exact(8).map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32).collect(),
            "HalfStorage" => raw.chunks_exact(2).map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect(),
            _ => raw.chunks_exact(2).map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)).collect(),
        };
        Ok(Some(HostTensor { shape: view.size.iter().map(|&n| n as usize).collect(), values }))
    }

    fn storage_bytes(&mut self, storage_key: &str) -> Result<&[u8], String> {
        if !self.cache.contains_key(storage_key) {
            let name = format!("{}data/{storage_key}", self.prefix);
            let bytes = read_entry(&mut self.archive, self.archive_len, &name).map_err(|e| format!("storage {e}"))?;
            self.stored = self.stored.saturating_add(bytes.len() as u64);
            self.cache.insert(storage_key.to_string(), bytes);
        }
        Ok(&self.cache[storage_key])
    }
}
