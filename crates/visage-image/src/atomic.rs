//! Writing a file so that a reader never sees it half-written and an old
//! version survives a failed write: a temporary file beside it, then a rename.

use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
///
/// The temporary file is `.<name>.<process id>.tmp`, so two threads of one process
/// must not write the same path at once. On a failed rename it is removed; on a failed
/// write it may be left behind.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, path).inspect_err(|_| {
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
        std::fs::remove_dir_all(dir).unwrap();
    }
}
