//! insightface's IJB-B/IJB-C metadata layout (`meta/`, docs/spec/formats.md):
//! `*_face_tid_mid.txt` (`image template media`), `*_template_pair_label.txt`
//! (`template_1 template_2 label`), `*_name_5pts_score.txt`
//! (`image x1 y1 … x5 y5 detector_score`), and for 1:N the gallery/probe CSVs
//! with `TEMPLATE_ID` and `SUBJECT_ID` columns.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::error::{EvalError, Result};
use crate::io::text::{for_each_line_in, open_text, shorten, LineCtx};

/// One face of `*_face_tid_mid.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceRecord {
    /// The face crop's file name, as in the detector-score file.
    pub image: String,
    /// The template (set of faces of one subject) the face belongs to.
    pub template: i64,
    /// The media (photo or video) it comes from; a template averages its faces per media first.
    pub media: i64,
}

fn fields(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Reads `*_face_tid_mid.txt`: one face per line, in the order of the feature rows.
pub fn read_face_tid_mid(path: &Path) -> Result<Vec<FaceRecord>> {
    read_face_tid_mid_from(open_text(path)?, path)
}

/// [`read_face_tid_mid`] over any reader; `path` names the source in errors.
pub fn read_face_tid_mid_from(reader: impl BufRead, path: &Path) -> Result<Vec<FaceRecord>> {
    let mut out = Vec::new();
    for_each_line_in(reader, path, |n, line| {
        let ctx = LineCtx { path, line: n };
        let f = fields(line);
        if f.len() != 3 {
            return Err(ctx.error(format!("expected `image_name template_id media_id`, found {} fields", f.len())));
        }
        out.push(FaceRecord { image: f[0].to_string(), template: ctx.i64_field("template_id", f[1])?, media: ctx.i64_field("media_id", f[2])? });
        Ok(())
    })?;
    if out.is_empty() {
        return Err(EvalError::content(path, "empty file: expected `image_name template_id media_id` lines"));
    }
    Ok(out)
}

/// `(template_1, template_2, same)` rows.
pub fn read_template_pairs(path: &Path) -> Result<Vec<(i64, i64, bool)>> {
    read_template_pairs_from(open_text(path)?, path)
}

/// [`read_template_pairs`] over any reader; `path` names the source in errors.
pub fn read_template_pairs_from(reader: impl BufRead, path: &Path) -> Result<Vec<(i64, i64, bool)>> {
    let mut out = Vec::new();
    for_each_line_in(reader, path, |n, line| {
        let ctx = LineCtx { path, line: n };
        let f = fields(line);
        if f.len() != 3 {
            return Err(ctx.error(format!("expected `template_1 template_2 label`, found {} fields", f.len())));
        }
        out.push((ctx.i64_field("template_1", f[0])?, ctx.i64_field("template_2", f[1])?, ctx.label_field("label", f[2])?));
        Ok(())
    })?;
    if out.is_empty() {
        return Err(EvalError::content(path, "empty file: expected `template_1 template_2 label` lines"));
    }
    Ok(out)
}

/// Detector score (last column) per line of `*_name_5pts_score.txt`.
pub fn read_detector_scores(path: &Path) -> Result<Vec<(String, f64)>> {
    read_detector_scores_from(open_text(path)?, path)
}

/// [`read_detector_scores`] over any reader; `path` names the source in errors.
pub fn read_detector_scores_from(reader: impl BufRead, path: &Path) -> Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    for_each_line_in(reader, path, |n, line| {
        let ctx = LineCtx { path, line: n };
        let f = fields(line);
        if f.len() != 12 {
            return Err(ctx.error(format!("expected `image_name x1 y1 … x5 y5 detector_score` (12 fields), found {}", f.len())));
        }
        for (i, v) in f[1..11].iter().enumerate() {
            ctx.f64_field(&format!("landmark {}", i / 2 + 1), v)?;
        }
        out.push((f[0].to_string(), ctx.f64_field("detector_score", f[11])?));
        Ok(())
    })?;
    Ok(out)
}

/// `(template, subject)` rows of a 1:N gallery or probe CSV (other columns ignored).
pub fn read_template_subjects(path: &Path) -> Result<Vec<(i64, i64)>> {
    read_template_subjects_from(open_text(path)?, path)
}

/// [`read_template_subjects`] over any reader; `path` names the source in errors.
pub fn read_template_subjects_from(reader: impl BufRead, path: &Path) -> Result<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    let mut columns: Option<(usize, usize)> = None;
    for_each_line_in(reader, path, |n, line| {
        let ctx = LineCtx { path, line: n };
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let Some((t, s)) = columns else {
            let find = |name: &str| f.iter().position(|c| c.eq_ignore_ascii_case(name));
            match (find("TEMPLATE_ID"), find("SUBJECT_ID")) {
                (Some(t), Some(s)) => columns = Some((t, s)),
                _ => return Err(ctx.error(format!("expected a header with TEMPLATE_ID and SUBJECT_ID columns, found `{}`", shorten(line)))),
            }
            return Ok(());
        };
        if f.len() <= t.max(s) {
            return Err(ctx.error(format!("expected at least {} comma-separated fields, found {}", t.max(s) + 1, f.len())));
        }
        out.push((ctx.i64_field("TEMPLATE_ID", f[t])?, ctx.i64_field("SUBJECT_ID", f[s])?));
        Ok(())
    })?;
    if out.is_empty() {
        return Err(EvalError::content(path, "no templates: expected a TEMPLATE_ID,SUBJECT_ID header and rows"));
    }
    Ok(out)
}

/// The one file in `dir` whose name ends with `suffix` (e.g. `_face_tid_mid.txt`).
pub fn find_meta_file(dir: &Path, suffix: &str) -> Result<PathBuf> {
    let entries = std::fs::read_dir(dir).map_err(|e| EvalError::io(dir, e))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(suffix)))
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.pop().unwrap()),
        0 => Err(EvalError::content(dir, format!("no `*{suffix}` file in this folder (insightface IJB meta layout)"))),
        _ => Err(EvalError::content(dir, format!("several `*{suffix}` files: {found:?}; pass one folder per dataset"))),
    }
}
