//! Where the ONNX Runtime shared library comes from.
//!
//! `ort` is built with `load-dynamic`: nothing native is linked, so the crate
//! builds anywhere, and the library is found at run time, in this order:
//! 1. `ORT_DYLIB_PATH` (the variable `ort` itself reads): the user's own build;
//! 2. the cache, `$VISAGE_CACHE/onnxruntime/<version>/` or
//!    `~/.cache/visage/onnxruntime/<version>/` (`$XDG_CACHE_HOME` honoured);
//! 3. the pinned PyPI wheel, fetched into the cache once.
//!
//! Step 3 asks pip for the wheel by name (`python3 -m pip download --no-deps`):
//! pip already knows the user's index, proxy and certificates, which a
//! hand-rolled HTTPS client would have to relearn. The wheel's sha256 is then
//! checked against [`WHEEL_SHA256`] here, so what is loaded does not depend on
//! trusting the index, and the library is unzipped in Rust. Concurrent
//! processes (parallel test binaries) serialise on a lock file in the cache
//! directory, and the library appears under its final name only by a rename,
//! so no process ever loads a half-written file.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::checksum::sha256_hex;
use crate::error::{InferError, Result};

/// The ONNX Runtime release visage pins. `ort` 2.0.0-rc.15 wraps the 1.31 C
/// API (its `api-22` feature, which visage selects, also accepts 1.22+ from
/// `ORT_DYLIB_PATH`).
pub const ONNXRUNTIME_VERSION: &str = "1.31.1";
/// The pinned wheel: the CPython 3.12 manylinux x86_64 build (the library
/// inside is the same for every CPython tag; one tag keeps the hash unique).
pub const WHEEL_FILE: &str = "onnxruntime-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl";
/// sha256 of [`WHEEL_FILE`] as the registry lists it.
pub const WHEEL_SHA256: &str = "1f3dea47f2f0e5117c2404cea7d21fd253ae7836a3bf167a501cdfbb2600d536";
/// The shared library inside the wheel.
const LIBRARY_IN_WHEEL: &str = "onnxruntime/capi/libonnxruntime.so.1.31.1";
const LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";

/// The ONNX Runtime library to load: `ORT_DYLIB_PATH`, else the cached copy,
/// else the pinned wheel fetched and unpacked into the cache.
pub fn locate_onnxruntime() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() { Ok(path) } else { Err(InferError::Runtime(format!("ORT_DYLIB_PATH={}: no such file", path.display()))) };
    }
    let dir = cache_dir()?;
    let library = dir.join(LIBRARY_FILE);
    if library.is_file() {
        return Ok(library);
    }
    fs::create_dir_all(&dir).map_err(|e| InferError::io(&dir, e))?;
    let lock_path = dir.join(".lock");
    let lock = File::create(&lock_path).map_err(|e| InferError::io(&lock_path, e))?;
    lock.lock().map_err(|e| InferError::io(&lock_path, e))?;
    // Another process may have finished the download while this one waited.
    if !library.is_file() {
        let download_dir = dir.join(format!("download-{}", std::process::id()));
        let installed = download_wheel(&download_dir).and_then(|wheel| install_from_wheel(&wheel, WHEEL_SHA256, &library));
        let _ = fs::remove_dir_all(&download_dir);
        installed?;
    }
    Ok(library)
}

/// `$VISAGE_CACHE/onnxruntime/<version>`, else `$XDG_CACHE_HOME/visage/…`,
/// else `~/.cache/visage/…`.
pub fn cache_dir() -> Result<PathBuf> {
    Ok(crate::bundled::cache_root()?.join("onnxruntime").join(ONNXRUNTIME_VERSION))
}

/// Asks pip for the pinned wheel, into `download_dir`.
fn download_wheel(download_dir: &Path) -> Result<PathBuf> {
    if !(cfg!(target_os = "linux") && cfg!(target_arch = "x86_64")) {
        return Err(InferError::Runtime(format!(
            "visage pins the onnxruntime {ONNXRUNTIME_VERSION} wheel for Linux x86_64 only; on this platform point ORT_DYLIB_PATH at an ONNX Runtime ≥ 1.22 library"
        )));
    }
    let requirement = format!("onnxruntime=={ONNXRUNTIME_VERSION}");
    let output = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12"])
        .args(["--platform", "manylinux_2_28_x86_64", "--dest"])
        .arg(download_dir)
        .arg(&requirement)
        .output();
    let hint = format!(
        "cannot fetch {WHEEL_FILE} with `python3 -m pip download {requirement}`; either make pip able to reach the package index, \
         or put an ONNX Runtime ≥ 1.22 library at {} or in ORT_DYLIB_PATH",
        download_dir.with_file_name(LIBRARY_FILE).display()
    );
    match output {
        Err(e) => return Err(InferError::Runtime(format!("{hint} (python3: {e})"))),
        Ok(out) if !out.status.success() => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            return Err(InferError::Runtime(format!("{hint} (pip: {last})")));
        }
        Ok(_) => {}
    }
    let wheel = download_dir.join(WHEEL_FILE);
    if wheel.is_file() {
        Ok(wheel)
    } else {
        Err(InferError::Runtime(format!("{hint} (pip did not produce {})", wheel.display())))
    }
}

/// Checks `wheel`'s sha256, then writes its ONNX Runtime library to `library`
/// through a temporary file and a rename.
pub(crate) fn install_from_wheel(wheel: &Path, expected_sha256: &str, library: &Path) -> Result<()> {
    let bytes = fs::read(wheel).map_err(|e| InferError::io(wheel, e))?;
    let actual = sha256_hex(&bytes);
    if actual != expected_sha256 {
        return Err(InferError::Runtime(format!("{}: sha256 {actual}, expected {expected_sha256}: refusing to load it", wheel.display())));
    }
    let corrupt = |message: String| InferError::Runtime(format!("{}: {message}", wheel.display()));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| corrupt(format!("not a wheel (zip): {e}")))?;
    let mut member = archive.by_name(LIBRARY_IN_WHEEL).map_err(|_| corrupt(format!("has no {LIBRARY_IN_WHEEL}")))?;
    let mut contents = Vec::with_capacity(member.size() as usize);
    member.read_to_end(&mut contents).map_err(|e| corrupt(format!("cannot unzip {LIBRARY_IN_WHEEL}: {e}")))?;
    let partial = library.with_extension(format!("partial-{}", std::process::id()));
    fs::write(&partial, &contents).map_err(|e| InferError::io(&partial, e))?;
    fs::rename(&partial, library).map_err(|e| InferError::io(library, e))
}

/// The process-wide ONNX Runtime environment, created on first use from
/// [`locate_onnxruntime`]. A failure is remembered: every later call reports
/// the same message instead of retrying a download.
pub fn environment() -> Result<ort::environment::Environment> {
    static ENVIRONMENT: OnceLock<std::result::Result<ort::environment::Environment, String>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            let library = locate_onnxruntime().map_err(|e| match e {
                InferError::Runtime(message) => message,
                other => other.to_string(),
            })?;
            ort::init_from(&library)
                .map_err(|e| format!("{}: {e}", library.display()))?
                .with_name("visage")
                .build()
                .map_err(|e| format!("{}: cannot create the environment: {e}", library.display()))
        })
        .clone()
        .map_err(InferError::Runtime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fake_wheel(dir: &Path, member: &str, payload: &[u8]) -> (PathBuf, String) {
        let path = dir.join("fake.whl");
        let mut writer = zip::ZipWriter::new(File::create(&path).unwrap());
        writer.start_file(member, zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)).unwrap();
        writer.write_all(payload).unwrap();
        writer.finish().unwrap();
        let sha = sha256_hex(&fs::read(&path).unwrap());
        (path, sha)
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("visage-infer-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn installs_the_library_only_from_a_wheel_with_the_pinned_hash() {
        let dir = scratch("wheel");
        let (wheel, sha) = fake_wheel(&dir, LIBRARY_IN_WHEEL, b"\x7fELF not really");
        let library = dir.join(LIBRARY_FILE);

        let wrong = "0".repeat(64);
        let err = install_from_wheel(&wheel, &wrong, &library).unwrap_err().to_string();
        assert!(err.contains("fake.whl: sha256") && err.contains("refusing"), "{err}");
        assert!(!library.exists());

        install_from_wheel(&wheel, &sha, &library).unwrap();
        assert_eq!(fs::read(&library).unwrap(), b"\x7fELF not really");

        let (other, other_sha) = fake_wheel(&dir, "onnxruntime/capi/other.so", b"x");
        let err = install_from_wheel(&other, &other_sha, &library).unwrap_err().to_string();
        assert!(err.contains("has no onnxruntime/capi/libonnxruntime.so.1.31.1"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
