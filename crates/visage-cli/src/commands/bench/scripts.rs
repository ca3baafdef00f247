//! The Python reference scripts the `bench` commands run, compiled into the
//! binary so they work wherever it is copied: each run writes them into a
//! scratch folder (keeping `scripts/`'s layout, which their imports rely
//! on), or `--scripts-dir` points at a checkout's `scripts/` instead.

use std::path::{Path, PathBuf};

use super::super::Failure;

/// `(path under scripts/, contents)` of every script a benchmark runs or imports.
const SCRIPTS: [(&str, &str); 5] = [
    ("bench/heads_torch.py", include_str!("../../../../../scripts/bench/heads_torch.py")),
    ("bench/train_torch.py", include_str!("../../../../../scripts/bench/train_torch.py")),
    ("bench/infer_ort.py", include_str!("../../../../../scripts/bench/infer_ort.py")),
    ("bench/infer_pipeline.py", include_str!("../../../../../scripts/bench/infer_pipeline.py")),
    ("reference/backbones_reference.py", include_str!("../../../../../scripts/reference/backbones_reference.py")),
];

/// A folder holding the reference scripts: a checkout's `scripts/` when
/// given, else the compiled-in copies written to a scratch folder that is
/// removed when this is dropped.
pub struct ReferenceScripts {
    root: PathBuf,
    scratch: bool,
}

impl ReferenceScripts {
    /// `scripts_dir` (a folder laid out as the repository's `scripts/`), else
    /// the bundled scripts written under the system's temporary folder.
    pub fn new(scripts_dir: Option<&Path>) -> Result<Self, Failure> {
        if let Some(dir) = scripts_dir {
            return Ok(Self { root: dir.to_path_buf(), scratch: false });
        }
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("visage-scripts-{}-{n}", std::process::id()));
        for (path, text) in SCRIPTS {
            let file = root.join(path);
            let written = std::fs::create_dir_all(file.parent().expect("scripts sit in a folder")).and_then(|()| std::fs::write(&file, text));
            written.map_err(|e| Failure::other(format!("{}: cannot write the reference script: {e}", file.display())))?;
        }
        Ok(Self { root, scratch: true })
    }

    /// The script at `path` under `scripts/` (e.g. `bench/heads_torch.py`);
    /// an error when a given `--scripts-dir` lacks it.
    pub fn path(&self, path: &str) -> Result<PathBuf, Failure> {
        let file = self.root.join(path);
        if file.is_file() {
            Ok(file)
        } else {
            Err(Failure::bad_input(format!("{}: no such script (--scripts-dir is a folder laid out as the repository's scripts/)", file.display())))
        }
    }
}

impl Drop for ReferenceScripts {
    fn drop(&mut self) {
        if self.scratch {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_scripts_equal_the_repository_s_and_keep_its_layout() {
        let scripts = ReferenceScripts::new(None).unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts");
        for (path, _) in SCRIPTS {
            assert_eq!(std::fs::read(scripts.path(path).unwrap()).unwrap(), std::fs::read(repo.join(path)).unwrap(), "{path}");
        }
        let root = scripts.root.clone();
        drop(scripts);
        assert!(!root.exists());
        let given = ReferenceScripts::new(Some(&repo)).unwrap();
        assert_eq!(given.path("bench/heads_torch.py").unwrap(), repo.join("bench/heads_torch.py"));
        assert!(given.path("bench/nothing.py").is_err());
    }
}
