//! Image folders: `root/<identity>/<images>`, as torchvision's `ImageFolder`
//! reads them, so a label means the same here and in a PyTorch script over
//! the same folder: identities sorted by folder name (byte order, which is
//! Python's code-point order for UTF-8 names) get labels 0, 1, 2, …; the
//! images of one identity are all image files below its folder (sub-folders
//! included), directories visited in sorted path order and files in sorted
//! name order. Files with other extensions are ignored; entries that cannot
//! be listed are reported in `skipped` and left out.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// Extensions taken as images (case-insensitive): the formats the decoder reads.
pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "bmp"];

/// One image file of an [`ImageFolder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderImage {
    /// Path of the file: the scanned root joined with the identity folder
    /// and any sub-folders.
    pub path: PathBuf,
    /// Class index: the position of its identity folder in sorted name order.
    pub label: u32,
}

/// A scanned `root/<identity>/<images>` folder: the image list and labels
/// are fixed by [`ImageFolder::scan`]; files are not opened until loaded.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    root: PathBuf,
    /// Folder name of each label (lossy UTF-8 for display).
    class_names: Vec<String>,
    images: Vec<FolderImage>,
    /// Paths that could not be listed, with why.
    skipped: Vec<(PathBuf, String)>,
}

impl ImageFolder {
    /// Lists `root`: every sub-folder (links followed) is an identity, every
    /// file with an [`IMAGE_EXTENSIONS`] extension below it one of its
    /// images (contents are not checked). Fails when `root` cannot be
    /// listed, has no sub-folders, more than 2^24 of them, or no image file
    /// at all; entries that cannot be read are left out and reported in
    /// [`ImageFolder::skipped`].
    pub fn scan(root: &Path) -> Result<Self> {
        let folder_error = |message: String| DataError::Folder { path: root.to_path_buf(), message };
        let entries = std::fs::read_dir(root).map_err(|e| DataError::io(root, "cannot list the image folder", e))?;
        let mut skipped = Vec::new();
        let mut class_dirs: Vec<(OsString, PathBuf)> = Vec::new();
        for entry in entries {
            match entry {
                // `metadata` follows links (torchvision's `is_dir` does too).
                Ok(entry) => match std::fs::metadata(entry.path()) {
                    Ok(meta) if meta.is_dir() => class_dirs.push((entry.file_name(), entry.path())),
                    Ok(_) => {}
                    Err(e) => skipped.push((entry.path(), format!("cannot read: {e}"))),
                },
                Err(e) => skipped.push((root.to_path_buf(), format!("cannot list an entry: {e}"))),
            }
        }
        if class_dirs.is_empty() {
            return Err(folder_error("no identity sub-folders (expected one folder of images per identity)".into()));
        }
        class_dirs.sort();
        if class_dirs.len() > 1 << 24 {
            return Err(folder_error(format!("{} identities: labels above 2^24 do not fit a float label exactly", class_dirs.len())));
        }
        let mut images = Vec::new();
        let mut class_names = Vec::with_capacity(class_dirs.len());
        for (label, (name, dir)) in class_dirs.iter().enumerate() {
            class_names.push(name.to_string_lossy().into_owned());
            for path in image_files_below(dir, &mut skipped) {
                images.push(FolderImage { path, label: label as u32 });
            }
        }
        if images.is_empty() {
            return Err(folder_error(format!(
                "{} identity folders but no image files in them (extensions: {})",
                class_dirs.len(),
                IMAGE_EXTENSIONS.join(", ")
            )));
        }
        Ok(Self { root: root.to_path_buf(), class_names, images, skipped })
    }

    /// The folder that was scanned.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Identity folder names indexed by label (lossy UTF-8), empty
    /// identity folders included.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Number of identity folders (empty ones count: labels are not renumbered).
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Every image, grouped by label in label order, torchvision's order within a label.
    pub fn images(&self) -> &[FolderImage] {
        &self.images
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there is no image (never true for a folder `scan` returned).
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Paths left out while listing (unreadable entries, folders reached a
    /// second time through a link), each with the reason.
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }
}

fn has_image_extension(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|known| e.eq_ignore_ascii_case(known)))
}

/// Image files under `dir`, directories in sorted path order, files in sorted
/// name order within each (torchvision: `sorted(os.walk(dir))`, `sorted(fnames)`).
///
/// Links are followed as torchvision does, with one difference: a directory
/// is listed once per identity, by the first path (in sorted order) that
/// reaches it. Python's walk loops forever on a link to an ancestor, and two
/// such links per level make 2^depth paths; here each real directory is
/// entered once and the other paths to it are reported in `skipped`.
fn image_files_below(dir: &Path, skipped: &mut Vec<(PathBuf, String)>) -> Vec<PathBuf> {
    let mut entered: HashSet<PathBuf> = HashSet::new();
    match std::fs::canonicalize(dir) {
        Ok(real) => {
            entered.insert(real);
        }
        Err(e) => {
            skipped.push((dir.to_path_buf(), format!("cannot resolve: {e}")));
            return Vec::new();
        }
    }
    let mut directories = vec![dir.to_path_buf()];
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current).inspect_err(|e| skipped.push((current.clone(), format!("cannot list: {e}")))) else {
            continue;
        };
        let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_dir())).collect();
        children.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
        // Pushed in reverse so the stack pops them in sorted order.
        for path in children.into_iter().rev() {
            match std::fs::canonicalize(&path) {
                Ok(real) => {
                    if entered.insert(real) {
                        directories.push(path.clone());
                        pending.push(path);
                    } else {
                        skipped.push((path, "a link to a folder already listed for this identity: listed once".into()));
                    }
                }
                Err(e) => skipped.push((path, format!("cannot resolve: {e}"))),
            }
        }
    }
    directories.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    let mut files = Vec::new();
    for directory in directories {
        let Ok(entries) = std::fs::read_dir(&directory) else { continue };
        let mut names: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| has_image_extension(p) && std::fs::metadata(p).is_ok_and(|m| m.is_file())).collect();
        names.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        files.extend(names);
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_sorted_folder_names_and_files_are_sorted() {
        let root = std::env::temp_dir().join(format!("visage-data-folder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (dir, files) in [
            ("bob", &["b.jpg", "A.PNG", "notes.txt"][..]),
            ("alice", &["2.jpg", "10.jpg"][..]),
            ("alice/more", &["0.bmp"][..]),
            ("Zed", &["z.webp"][..]),
            ("empty", &[][..]),
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
            for f in files {
                std::fs::write(root.join(dir).join(f), b"x").unwrap();
            }
        }
        std::fs::write(root.join("README.txt"), b"not an identity").unwrap();
        let folder = ImageFolder::scan(&root).unwrap();
        // Byte order: uppercase before lowercase.
        assert_eq!(folder.class_names(), ["Zed", "alice", "bob", "empty"]);
        let listed: Vec<(String, u32)> =
            folder.images().iter().map(|i| (i.path.strip_prefix(&root).unwrap().to_string_lossy().into_owned(), i.label)).collect();
        let expected = [("Zed/z.webp", 0), ("alice/10.jpg", 1), ("alice/2.jpg", 1), ("alice/more/0.bmp", 1), ("bob/A.PNG", 2), ("bob/b.jpg", 2)];
        assert_eq!(listed, expected.map(|(p, l)| (p.to_string(), l)));
        assert!(folder.skipped().is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn link_loops_are_entered_once_not_forever() {
        let root = std::env::temp_dir().join(format!("visage-data-loops-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("alice/sub")).unwrap();
        std::fs::write(root.join("alice/a.jpg"), b"x").unwrap();
        std::fs::write(root.join("alice/sub/b.jpg"), b"x").unwrap();
        // Two links to the identity folder itself in each of its folders: a
        // walk that follows them blindly never ends (2^depth paths).
        for (dir, target) in [("alice", "."), ("alice", ".."), ("alice/sub", ".."), ("alice/sub", "../..")] {
            for name in ["loop1", "loop2"] {
                let link = root.join(dir).join(format!("{name}-{}", target.len()));
                std::os::unix::fs::symlink(target, link).unwrap();
            }
        }
        // That the scan returns at all proves it ends (a walk that followed
        // the links blindly never returns, and fails by CI's timeout). What
        // it returns proves each real directory was entered once: three are
        // (alice, alice/sub and, through one `..` link, the root), and each
        // other path to them is skipped exactly once: the other 7 links and
        // `root/alice` reached back through the root, 8 in all.
        let folder = ImageFolder::scan(&root).unwrap();
        let listed: Vec<String> = folder.images().iter().map(|i| i.path.strip_prefix(&root).unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(listed, ["alice/a.jpg", "alice/sub/b.jpg"]);
        assert_eq!(folder.num_classes(), 1);
        assert!(folder.skipped().iter().all(|(_, why)| why.contains("listed once")), "{:?}", folder.skipped());
        assert_eq!(folder.skipped().len(), 8, "{:?}", folder.skipped());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_folder_without_identities_is_an_error_naming_it() {
        let root = std::env::temp_dir().join(format!("visage-data-flat-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a.jpg"), b"x").unwrap();
        let err = ImageFolder::scan(&root).unwrap_err().to_string();
        assert_eq!(err, format!("{}: no identity sub-folders (expected one folder of images per identity)", root.display()));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
