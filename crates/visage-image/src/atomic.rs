//! Writing a file so that a reader never sees it half-written and an old
//! version survives a failed write: a temporary file beside it, then a rename.

use std::path::Path;

/// How [`write_atomically_with`] writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AtomicOptions {
    /// Unix permission bits of a newly created file (e.g. `0o600` for
    /// secrets and faces); `None` leaves them to the process's umask.
    pub mode: Option<u32>,
    /// `fsync` the data before the rename, so after a crash the path holds
    /// either the old or the whole new content (not an empty file).
    pub sync: bool,
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
///
/// The temporary file is `.<name>.<process id>-<n>.tmp`, with `n` unique within
/// the process, so concurrent writers never share one. On a failed write or
/// rename it is removed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically_with(path, bytes, AtomicOptions::default())
}

/// [`write_atomically`] with a file mode and an optional `fsync` before the rename.
pub fn write_atomically_with(path: &Path, bytes: &[u8], options: AtomicOptions) -> std::io::Result<()> {
    use std::io::Write as _;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = path.with_file_name(format!(".{name}.{}-{unique}.tmp", std::process::id()));
    let mut open = std::fs::OpenOptions::new();
    open.create(true).truncate(true).write(true);
    #[cfg(unix)]
    if let Some(mode) = options.mode {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(mode);
    }
    let written = open.open(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        if options.sync {
            file.sync_all()?;
        }
        Ok(())
    });
    written.and_then(|()| std::fs::rename(&temp, path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// Writes `picture` as a PNG file, atomically (see [`write_atomically`]); an encoding
/// failure comes back as an [`std::io::Error`].
pub fn write_png(picture: &image::RgbImage, path: &Path) -> std::io::Result<()> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut bytes, image::ImageFormat::Png).map_err(std::io::Error::other)?;
    write_atomically(path, bytes.get_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("visage-image-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.txt");
        write_atomically(&path, b"old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        // A folder that does not exist: the error comes back, nothing is left.
        assert!(write_atomically(&dir.join("missing/out.txt"), b"x").is_err());
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["out.txt"]);
        // A mode for a new file, and a synced write.
        let secret = dir.join("secret.json");
        write_atomically_with(&secret, b"{}", AtomicOptions { mode: Some(0o600), sync: true }).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(std::fs::read(&secret).unwrap(), b"{}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
