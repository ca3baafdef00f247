//! The cleaned dataset, in the input's format: the kept files of an image
//! folder copied, or the kept records of a `.rec` packed anew.

use std::path::{Path, PathBuf};

use visage_data::{InsightfacePacker, RecordDataset};

use crate::error::{Result, TrainError};
use crate::source::TrainSource;

/// Writes the kept samples (source indices) of `source` under `out_dir`:
/// `data/` for a folder, `train.rec` + `train.idx` for RecordIO. Returns the
/// folder or the `.rec`.
pub(super) fn write_cleaned(source: &TrainSource, kept: &[usize], classes: usize, out_dir: &Path) -> Result<PathBuf> {
    match source {
        TrainSource::Folder(folder) => write_folder(folder, kept, &out_dir.join("data")),
        TrainSource::Record(records) => write_records(records, kept, classes, &out_dir.join("train.rec")),
    }
}

/// Copies the kept files to `target/<class>/…` (paths below the input root
/// kept), every class folder created even when emptied so that the labels of
/// the cleaned folder are those of the input. Built as a hidden sibling and
/// renamed into place.
fn write_folder(folder: &visage_data::ImageFolder, kept: &[usize], target: &Path) -> Result<PathBuf> {
    let parent = target.parent().unwrap_or(Path::new("."));
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let write = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainError::Write { path, source }
    };
    let _ = std::fs::remove_dir_all(&temp);
    for class in folder.class_names() {
        std::fs::create_dir_all(temp.join(class)).map_err(write(&temp.join(class)))?;
    }
    for &index in kept {
        let from = &folder.images()[index].path;
        let relative = from.strip_prefix(folder.root()).unwrap_or(from);
        let to = temp.join(relative);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(write(dir))?;
        }
        std::fs::copy(from, &to).map_err(write(&to))?;
    }
    let _ = std::fs::remove_dir_all(target);
    std::fs::rename(&temp, target).map_err(write(target))?;
    Ok(target.to_path_buf())
}

/// Writes the kept records (their image bytes unchanged) as a new `.rec` in
/// insightface's layout, class by class so each class is one key range.
fn write_records(records: &RecordDataset, kept: &[usize], classes: usize, target: &Path) -> Result<PathBuf> {
    let mut packer = InsightfacePacker::create(target, classes)?;
    let mut entries: Vec<(u32, usize, Vec<u8>)> = Vec::with_capacity(kept.len());
    for &index in kept {
        let record = records.read_image(index)?;
        entries.push((record.label, index, record.record.image));
    }
    entries.sort_by_key(|(label, index, _)| (*label, *index));
    for (label, _, image) in entries {
        packer.push(label, image)?;
    }
    packer.finish()?;
    Ok(target.to_path_buf())
}
