//! sha256 as lower-case hex: the form registries and `sha256sum` print, used
//! to pin downloaded ONNX Runtime wheels and model files.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{InferError, Result};

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a model file against the sha256 its config (`config_name`) pins, when it pins one.
pub(crate) fn verify_model_file(path: &Path, expected: Option<&str>, config_name: &str) -> Result<()> {
    let Some(expected) = expected else { return Ok(()) };
    let bytes = std::fs::read(path).map_err(|e| InferError::io(path, e))?;
    let actual = sha256_hex(&bytes);
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(InferError::model(path, format!("sha256 {actual}, but config `{config_name}` expects {expected}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_digest() {
        assert_eq!(super::sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
