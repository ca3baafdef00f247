//! Pretrained weights in and out: [`load_weights`] (ONNX, visage
//! safetensors, PyTorch checkpoints), [`save_weights`] and
//! [`read_weights_config`].

use burn::tensor::backend::Backend;

use crate::backbone::Backbone;
use crate::config::{BackboneConfig, BackboneShape};
use crate::error::NnError;
use crate::onnx::load_onnx_weights;
use crate::pytorch::{load_pytorch_checkpoint, CheckpointFamily};
use crate::state_dict::StateDict;

/// Loads pretrained weights into a fresh backbone of `shape`: an ONNX model
/// (`.onnx`, IResNet or MobileFaceNet), a visage weights file
/// (`.safetensors` under the reference keys, as [`save_weights`] writes) or a
/// PyTorch checkpoint (anything else: `.pth`, `.pt`, Lightning `.ckpt`) of
/// the given family.
pub fn load_weights<B: Backend>(
    path: &std::path::Path,
    family: CheckpointFamily,
    shape: &BackboneShape,
    device: &B::Device,
) -> Result<Backbone<B>, NnError> {
    let has_extension = |wanted: &str| path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case(wanted));
    if has_extension("onnx") {
        load_onnx_weights(path, shape, device)
    } else if has_extension("safetensors") {
        let state = StateDict::read_safetensors(path)?;
        shape.init::<B>(device)?.load_state_dict(shape, &state).map_err(|error| NnError::Checkpoint {
            path: path.to_path_buf(),
            family: "safetensors".into(),
            source: Box::new(error),
        })
    } else {
        load_pytorch_checkpoint(path, family, shape, device)
    }
}

/// Loads a network from a weights file whose architecture is either recorded
/// in it or given: a visage `.safetensors` file carries its [`BackboneConfig`]
/// (see [`save_weights`]); for anything else (`.onnx`, PyTorch checkpoints)
/// `config` says what to build. Returns the backbone and its shape.
pub fn load_network<B: Backend>(
    path: &std::path::Path,
    config: &BackboneConfig,
    family: CheckpointFamily,
    device: &B::Device,
) -> Result<(Backbone<B>, BackboneShape), NnError> {
    let config = if path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("safetensors")) {
        read_weights_config(path)?
    } else {
        config.clone()
    };
    let shape = config.shape()?;
    let backbone = load_weights::<B>(path, family, &shape, device)?;
    Ok((backbone, shape))
}

/// Header key under which [`save_weights`] stores the backbone's config (JSON).
pub const WEIGHTS_CONFIG_KEY: &str = "visage.backbone";

/// Writes `backbone`'s weights as safetensors under the reference keys, its
/// [`BackboneConfig`] in the header, so [`read_weights_config`] + [`load_weights`]
/// rebuild it without being told the architecture.
pub fn save_weights<B: Backend>(backbone: &Backbone<B>, config: &BackboneConfig, path: &std::path::Path) -> Result<(), NnError> {
    let shape = config.shape()?;
    let json = serde_json::to_string(config).map_err(|e| NnError::InvalidConfig { field: "backbone", problem: e.to_string() })?;
    let bytes = backbone.state_dict(&shape).to_safetensors_bytes([(WEIGHTS_CONFIG_KEY.to_string(), json)].into())?;
    std::fs::write(path, bytes).map_err(|source| NnError::Io { path: path.to_path_buf(), source })
}

/// The [`BackboneConfig`] a [`save_weights`] file carries.
pub fn read_weights_config(path: &std::path::Path) -> Result<BackboneConfig, NnError> {
    let metadata = StateDict::read_safetensors_metadata(path)?;
    let json = metadata.get(WEIGHTS_CONFIG_KEY).ok_or_else(|| NnError::Format {
        path: path.to_path_buf(),
        problem: format!("no `{WEIGHTS_CONFIG_KEY}` entry in the header: not written by visage (give the architecture)"),
    })?;
    serde_json::from_str(json)
        .map_err(|e| NnError::Format { path: path.to_path_buf(), problem: format!("`{WEIGHTS_CONFIG_KEY}` is not a backbone config: {e}") })
}
