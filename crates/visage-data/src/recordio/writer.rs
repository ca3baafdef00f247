//! Writes `train.rec` + `train.idx` atomically: both go to temporary files
//! beside the targets and are renamed only by [`RecordWriter::finish`], so an
//! interrupted pack never leaves a `.rec` that looks complete. Dropping an
//! unfinished writer removes the temporary files.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::file::index_path_for;
use super::frame;
use crate::error::{DataError, Result};

/// An in-progress `.rec` + `.idx` pair, written to `NAME.partial-PID` files
/// beside the targets until [`RecordWriter::finish`].
pub struct RecordWriter {
    rec_path: PathBuf,
    idx_path: PathBuf,
    rec_temp: PathBuf,
    idx_temp: PathBuf,
    rec: Option<BufWriter<File>>,
    idx: Option<BufWriter<File>>,
    position: u64,
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial-{}", std::process::id()));
    path.with_file_name(name)
}

impl RecordWriter {
    /// Starts `rec_path` and the `.idx` beside it.
    pub fn create(rec_path: &Path) -> Result<Self> {
        let idx_path = index_path_for(rec_path);
        if idx_path == rec_path {
            return Err(DataError::Config(format!("{}: the output must not end in .idx", rec_path.display())));
        }
        let (rec_temp, idx_temp) = (temp_path(rec_path), temp_path(&idx_path));
        let create = |path: &Path| File::create(path).map(BufWriter::new).map_err(|e| DataError::io(path, "cannot create", e));
        let rec = create(&rec_temp)?;
        let idx = match create(&idx_temp) {
            Ok(idx) => idx,
            Err(e) => {
                let _ = std::fs::remove_file(&rec_temp);
                return Err(e);
            }
        };
        Ok(Self { rec_path: rec_path.to_path_buf(), idx_path, rec_temp, idx_temp, rec: Some(rec), idx: Some(idx), position: 0 })
    }

    /// Final path of the `.rec` (where `finish` renames it).
    pub fn rec_path(&self) -> &Path {
        &self.rec_path
    }

    /// Final path of the `.idx`: the `.rec` path with extension `idx`.
    pub fn idx_path(&self) -> &Path {
        &self.idx_path
    }

    /// Appends a record under `key`; returns its byte offset.
    pub fn write(&mut self, key: u64, record: &[u8]) -> Result<u64> {
        let offset = self.position;
        let rec = self.rec.as_mut().expect("writer already finished");
        self.position += frame::write_record(rec, record).map_err(|e| DataError::io(&self.rec_temp, "cannot write", e))?;
        let idx = self.idx.as_mut().expect("writer already finished");
        writeln!(idx, "{key}\t{offset}").map_err(|e| DataError::io(&self.idx_temp, "cannot write", e))?;
        Ok(offset)
    }

    /// Overwrites the record written at `offset` with one of exactly the same
    /// framed size (insightface's header record, whose id range is known only
    /// at the end).
    pub fn overwrite(&mut self, offset: u64, record: &[u8]) -> Result<()> {
        let mut framed = Vec::new();
        frame::write_record(&mut framed, record).expect("writing to memory");
        let rec = self.rec.as_mut().expect("writer already finished");
        let io = |e| DataError::io(PathBuf::from(&self.rec_temp), "cannot rewrite a record", e);
        rec.flush().map_err(io)?;
        let file = rec.get_mut();
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        file.write_all(&framed).map_err(io)?;
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok(())
    }

    /// Flushes, syncs and renames both files into place.
    pub fn finish(mut self) -> Result<()> {
        for (writer, temp) in [(self.rec.take(), &self.rec_temp), (self.idx.take(), &self.idx_temp)] {
            let file = writer.unwrap().into_inner().map_err(|e| DataError::io(temp, "cannot flush", e.into_error()))?;
            file.sync_all().map_err(|e| DataError::io(temp, "cannot sync", e))?;
        }
        // The index last: a reader that sees the new .idx also sees the new .rec.
        std::fs::rename(&self.rec_temp, &self.rec_path).map_err(|e| DataError::io(&self.rec_path, "cannot rename into place", e))?;
        std::fs::rename(&self.idx_temp, &self.idx_path).map_err(|e| DataError::io(&self.idx_path, "cannot rename into place", e))?;
        Ok(())
    }
}

impl Drop for RecordWriter {
    fn drop(&mut self) {
        if self.rec.is_some() || self.idx.is_some() {
            self.rec.take();
            self.idx.take();
            let _ = std::fs::remove_file(&self.rec_temp);
            let _ = std::fs::remove_file(&self.idx_temp);
        }
    }
}
