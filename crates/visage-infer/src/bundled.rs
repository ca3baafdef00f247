//! The models that travel inside the library (and so inside the `visage`
//! binary and the Python wheel): every config of the repository's `models/`
//! folder, the default detector and recogniser ONNX files, their licence
//! texts and provenance.
//!
//! Nothing here refers to the source tree at run time: the bytes are
//! compiled in, and [`bundled_dir`] writes them once into the cache
//! (`$VISAGE_CACHE/models/bundled-<id>/`, `id` a hash of the bundle) so
//! the rest of the code, which loads models and configs from paths, works
//! unchanged. A file already there is compared byte for byte and rewritten
//! when it differs (a corrupted or edited cache heals itself); each file
//! appears under its final name only through a rename, so concurrent
//! processes never read a half-written file.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::checksum::sha256_hex;
use crate::error::{InferError, Result};

/// One file of the bundle: its name in the models folder and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct BundledFile {
    /// File name, as configs name it.
    pub name: &'static str,
    /// The file's contents.
    pub bytes: &'static [u8],
}

macro_rules! bundle {
    ($($name:literal),* $(,)?) => {
        &[$(BundledFile { name: $name, bytes: include_bytes!(concat!("../../../models/", $name)) }),*]
    };
}

/// Every file compiled in. The ONNX files are the defaults (YuNet-2023mar,
/// with fixed and with free input dims, and the default recogniser, plus the
/// same recogniser before its PRelu rewrite, which `visage synth` imports
/// into burn and the reference-parity tests embed with); the
/// configs of the models that are not bundled come along so that their names
/// resolve anywhere, and their files are found along the search path.
pub const BUNDLED_FILES: &[BundledFile] = bundle![
    "SOURCES.md",
    "LICENSE.yunet",
    "face_detection_yunet_2023mar.onnx",
    "face_detection_yunet_2023mar.toml",
    "face_detection_yunet_2023mar_dynamic.onnx",
    "face_detection_yunet_2023mar_dynamic.toml",
    "arcface_mobileface_128d_paddle_fastprelu.onnx",
    "arcface_mobileface_128d_paddle_fastprelu.toml",
    "arcface_mobileface_128d_paddle.onnx",
    "arcface_mobileface_128d_paddle.toml",
    "face_detection_yunet_2026may.toml",
    "faceplugin_fr_feature_512d.toml",
    "mobilefacenet_128d_pixamatch.toml",
    "scrfd_2.5g_bnkps.toml",
    "scrfd_500m_bnkps.toml",
];

/// The bundled file called `name`, if there is one.
pub fn bundled_file(name: &str) -> Option<&'static BundledFile> {
    BUNDLED_FILES.iter().find(|f| f.name == name)
}

/// The names of the bundled model configs (`NAME` of `NAME.toml`), sorted.
pub fn bundled_config_names() -> Vec<&'static str> {
    let mut names: Vec<_> = BUNDLED_FILES.iter().filter_map(|f| f.name.strip_suffix(".toml")).collect();
    names.sort_unstable();
    names
}

/// A short hash naming this bundle: the configs, texts and the ONNX files'
/// sizes (the configs carry the ONNX files' sha256, checked on every load).
pub fn bundle_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let mut summary = Vec::new();
        for file in BUNDLED_FILES {
            summary.extend_from_slice(file.name.as_bytes());
            summary.push(0);
            if file.name.ends_with(".onnx") {
                summary.extend_from_slice(&(file.bytes.len() as u64).to_le_bytes());
            } else {
                summary.extend_from_slice(file.bytes);
            }
            summary.push(0);
        }
        sha256_hex(&summary)[..16].to_string()
    })
}

/// The cache's root: `$VISAGE_CACHE`, else `$XDG_CACHE_HOME/visage`, else `~/.cache/visage`.
pub fn cache_root() -> Result<PathBuf> {
    let env_dir = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    env_dir("VISAGE_CACHE")
        .or_else(|| env_dir("XDG_CACHE_HOME").map(|d| d.join("visage")))
        .or_else(|| env_dir("HOME").map(|d| d.join(".cache/visage")))
        .ok_or_else(|| InferError::Runtime("no cache directory: set VISAGE_CACHE (or HOME)".into()))
}

/// The folder holding the bundle on disk, written on first use in the
/// process: `<cache root>/models/bundled-<id>`, or, when the cache cannot be
/// written, the same under the system's temporary folder. The error names
/// both folders when neither can be written.
pub fn bundled_dir() -> Result<PathBuf> {
    static DIR: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let leaf = format!("models/bundled-{}", bundle_id());
        let cache = cache_root().map(|root| root.join(&leaf));
        let first_error = match &cache {
            Ok(dir) => match write_bundle(dir) {
                Ok(()) => return Ok(dir.clone()),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        let user = std::env::var("USER").unwrap_or_default();
        let fallback = std::env::temp_dir().join(format!("visage-cache-{user}")).join(&leaf);
        write_bundle(&fallback).map(|()| fallback).map_err(|e| format!("cannot write the bundled models: {first_error}; {e}"))
    })
    .clone()
    .map_err(InferError::Runtime)
}

/// Writes every bundled file into `dir` whose copy there is missing or differs.
pub fn write_bundle(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| InferError::io(dir, e))?;
    for file in BUNDLED_FILES {
        let path = dir.join(file.name);
        let same = fs::metadata(&path).is_ok_and(|m| m.len() == file.bytes.len() as u64) && fs::read(&path).is_ok_and(|b| b == file.bytes);
        if same {
            continue;
        }
        let partial = dir.join(format!(".{}.partial-{}-{:?}", file.name, std::process::id(), std::thread::current().id()));
        fs::write(&partial, file.bytes).map_err(|e| InferError::io(&partial, e))?;
        fs::rename(&partial, &path).map_err(|e| {
            let _ = fs::remove_file(&partial);
            InferError::io(&path, e)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_has_every_config_and_the_default_models() {
        let names = bundled_config_names();
        assert!(names.contains(&crate::registry::DEFAULT_RECOGNIZER), "{names:?}");
        for (_, config) in crate::registry::DETECTOR_ALIASES {
            assert!(names.contains(&config), "{config} is not bundled");
        }
        // Every config of the repository's models/ folder is compiled in.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let mut on_disk: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().to_str().and_then(|n| n.strip_suffix(".toml")).map(str::to_string))
            .collect();
        on_disk.sort();
        assert_eq!(on_disk, names, "models/*.toml and BUNDLED_FILES differ");
        // The bundled ONNX files are the ones the configs' hashes name.
        for file in BUNDLED_FILES.iter().filter(|f| f.name.ends_with(".onnx")) {
            let config = BUNDLED_FILES.iter().find(|c| c.name == file.name.replace(".onnx", ".toml")).unwrap();
            let text = std::str::from_utf8(config.bytes).unwrap();
            assert!(text.contains(&sha256_hex(file.bytes)), "{}: sha256 is not the one its config names", file.name);
        }
    }

    #[test]
    fn writes_missing_and_altered_files_and_keeps_the_rest() {
        let dir = std::env::temp_dir().join(format!("visage-bundle-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        write_bundle(&dir).unwrap();
        for file in BUNDLED_FILES {
            assert_eq!(fs::read(dir.join(file.name)).unwrap(), file.bytes, "{}", file.name);
        }
        // A truncated model and an edited config are rewritten; nothing partial is left.
        let model = dir.join("face_detection_yunet_2023mar.onnx");
        fs::write(&model, b"truncated").unwrap();
        let config = dir.join("scrfd_2.5g_bnkps.toml");
        fs::write(&config, b"name = \"edited\"").unwrap();
        write_bundle(&dir).unwrap();
        assert_eq!(fs::read(&model).unwrap(), bundled_file("face_detection_yunet_2023mar.onnx").unwrap().bytes);
        assert_eq!(fs::read(&config).unwrap(), bundled_file("scrfd_2.5g_bnkps.toml").unwrap().bytes);
        let leftovers: Vec<_> =
            fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains("partial")).collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        assert_eq!(bundle_id().len(), 16);
        fs::remove_dir_all(&dir).unwrap();
    }
}
