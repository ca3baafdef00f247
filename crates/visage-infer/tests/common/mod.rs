//! Helpers for the tests that run on the real photos, models and reference
//! outputs in `shared/data` (beside the repository, in CI too).
#![allow(dead_code)]

use std::path::PathBuf;

pub fn shared_data() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    assert!(dir.join("reference").is_dir(), "{}: shared test data not found (expected shared/ beside the repository)", dir.display());
    dir
}

/// One row of `reference/landmarks_scrfd_2.5g_bnkps.csv`.
pub struct ReferenceFace {
    /// `identity/photo.ext`, relative to `faces/`.
    pub path: String,
    pub identity: String,
    pub landmarks: [[f32; 2]; 5],
}

/// Parses the landmark CSV by its header names: columns `x0,y0 … x4,y4` may
/// come in any order (the shared file interleaves them with `score`).
pub fn reference_faces() -> Vec<ReferenceFace> {
    let path = shared_data().join("reference/landmarks_scrfd_2.5g_bnkps.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("{}: no column {name}", path.display()));
    let (path_col, id_col) = (column("path"), column("identity"));
    let xy: Vec<(usize, usize)> = (0..5).map(|i| (column(&format!("x{i}")), column(&format!("y{i}")))).collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), header.len(), "{}: {line}", path.display());
            let num = |i: usize| fields[i].parse::<f32>().unwrap_or_else(|_| panic!("{}: bad number {:?}", path.display(), fields[i]));
            let mut landmarks = [[0.0; 2]; 5];
            for (k, &(cx, cy)) in xy.iter().enumerate() {
                landmarks[k] = [num(cx), num(cy)];
            }
            ReferenceFace { path: fields[path_col].to_string(), identity: fields[id_col].to_string(), landmarks }
        })
        .collect()
}

/// `reference/aligned/<identity>/<photo>.png` for a `faces/` path.
pub fn aligned_reference_path(face_path: &str) -> PathBuf {
    let mut p = shared_data().join("reference/aligned").join(face_path);
    p.set_extension("png");
    p
}
