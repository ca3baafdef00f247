//! One small JPEG per identity, shown beside search matches on the page.
//!
//! The gallery stores vectors, not photos (and the `GalleryStore` trait has
//! no place for pictures), so the service keeps thumbnails in its own
//! state directory beside the gallery: `STATE/thumbnails/<sha256(name)>.jpg`.
//! The hash keeps any identity name (slashes, dots, non-ASCII) a safe file
//! name. A thumbnail is a convenience, not gallery data: it is written after
//! the enrolment is acknowledged by the store, atomically (temporary file +
//! rename) so a reader never sees half a JPEG, without an fsync; one lost in
//! a crash only means the page shows a placeholder.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::ServeError;

pub struct ThumbnailStore {
    dir: PathBuf,
}

impl ThumbnailStore {
    pub fn open(dir: &Path) -> Result<Self, ServeError> {
        std::fs::create_dir_all(dir).map_err(|e| ServeError::io(dir, e))?;
        Ok(Self { dir: dir.to_path_buf() })
    }

    fn path(&self, name: &str) -> PathBuf {
        let hash: String = Sha256::digest(name.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hash}.jpg"))
    }

    pub fn put(&self, name: &str, jpeg: &[u8]) -> Result<(), ServeError> {
        let path = self.path(name);
        // Unique per writer, so two enrolments of one name never share a temporary file.
        let temp = path.with_extension(format!("{}-{:?}.tmp", std::process::id(), std::thread::current().id()).replace(['(', ')'], ""));
        std::fs::write(&temp, jpeg).map_err(|e| ServeError::io(&temp, e))?;
        std::fs::rename(&temp, &path).map_err(|e| ServeError::io(&path, e))
    }

    pub fn get(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(name)).ok()
    }

    pub fn exists(&self, name: &str) -> bool {
        self.path(name).is_file()
    }

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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
