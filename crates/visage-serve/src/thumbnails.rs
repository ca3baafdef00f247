//! One small JPEG per identity, shown beside search matches on the page.
//!
//! The gallery stores vectors, not photos (and the `GalleryStore` trait has
//! no place for pictures), so the service keeps thumbnails in its own
//! state directory beside the gallery: `STATE/thumbnails/<hash>.jpg`, the
//! hash being the first 128 bits of SHA-256(name) in hex. The hash keeps any identity name (slashes, dots, non-ASCII) a safe file
//! name. A thumbnail is a convenience, not gallery data: it is written after
//! the enrolment is acknowledged by the store, atomically (temporary file +
//! rename) so a reader never sees half a JPEG, without an fsync; one lost in
//! a crash only means the page shows a placeholder.
//!
//! A thumbnail is a photo of a face, biometric data like the gallery: the
//! directory is created 0700 and the files 0600. It must not outlive its
//! identity: a store write and the thumbnail change that follows it run
//! under one lock per name ([`ThumbnailStore::lock`]), so a deletion
//! cannot slip between an enrolment's store write and its thumbnail write
//! and leave a photo behind; and a thumbnail whose identity is gone from
//! the store (deleted by another process sharing a PostgreSQL gallery) is
//! removed when it is next asked for.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use crate::error::ServeError;

/// Names are spread over this many locks: enough that unrelated
/// enrolments rarely wait for each other.
const LOCK_STRIPES: usize = 64;

/// The thumbnail directory (`STATE/thumbnails`), one JPEG per identity
/// named by a hash of its name, with a striped lock per name.
pub struct ThumbnailStore {
    dir: PathBuf,
    locks: Vec<Mutex<()>>,
}

impl ThumbnailStore {
    /// Creates `dir` if needed and sets its mode to 0700 (an existing one too).
    pub fn open(dir: &Path) -> Result<Self, ServeError> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| ServeError::io(dir, e))?;
        // The builder's mode applies only to directories it creates: one that
        // already exists (made by hand, or with the default mode) is tightened here.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| ServeError::io(dir, e))?;
        Ok(Self { dir: dir.to_path_buf(), locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect() })
    }

    /// Held across a store write of `name` and the thumbnail change that goes with it.
    pub fn lock(&self, name: &str) -> MutexGuard<'_, ()> {
        let digest = Sha256::digest(name.as_bytes());
        let stripe = usize::from(digest[0]) % LOCK_STRIPES;
        self.locks[stripe].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, name: &str) -> PathBuf {
        let hash: String = Sha256::digest(name.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hash}.jpg"))
    }

    /// Writes `name`'s thumbnail (mode 0600), replacing any: a temporary
    /// file renamed into place, so readers never see half a JPEG; no fsync.
    pub fn put(&self, name: &str, jpeg: &[u8]) -> Result<(), ServeError> {
        let path = self.path(name);
        // Temporary names are unique per write, so two enrolments of one name never share one.
        let options = visage_image::AtomicOptions { mode: Some(0o600), sync: false };
        visage_image::write_atomically_with(&path, jpeg, options).map_err(|e| ServeError::io(&path, e))
    }

    /// `name`'s JPEG bytes; `None` when there is none or it cannot be read.
    pub fn get(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(name)).ok()
    }

    /// Whether `name` has a thumbnail file.
    pub fn exists(&self, name: &str) -> bool {
        self.path(name).is_file()
    }

    /// Deletes `name`'s thumbnail; one already gone (or undeletable) is ignored.
    pub fn remove(&self, name: &str) {
        let _ = std::fs::remove_file(self.path(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_name_gets_its_own_file() {
        let dir = std::env::temp_dir().join(format!("visage-serve-thumbs-{}", std::process::id()));
        let store = ThumbnailStore::open(&dir).unwrap();
        store.put("../../etc/passwd", b"one").unwrap();
        store.put("Zoë / Ünïcode", b"two").unwrap();
        assert_eq!(store.get("../../etc/passwd").unwrap(), b"one");
        assert_eq!(store.get("Zoë / Ünïcode").unwrap(), b"two");
        assert!(store.path("../../etc/passwd").starts_with(&dir));
        store.remove("Zoë / Ünïcode");
        assert!(store.get("Zoë / Ünïcode").is_none() && !store.exists("Zoë / Ünïcode"));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left behind");
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&dir), mode(&store.path("../../etc/passwd"))), (0o700, 0o600), "biometric data is owner-only");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
