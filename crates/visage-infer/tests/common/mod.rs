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

/// `reference/emb_<detector>__<model>_<RGB|BGR>.npz`: the face paths and
/// their L2-normalised embeddings (rows in the same order).
pub struct ReferenceEmbeddings {
    pub paths: Vec<String>,
    pub ids: Vec<String>,
    pub emb: ndarray::Array2<f32>,
}

pub fn reference_embeddings(file: &str) -> ReferenceEmbeddings {
    let path = shared_data().join("reference").join(file);
    let mut npz = ndarray_npy::NpzReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let emb: ndarray::Array2<f32> = npz.by_name("emb.npy").unwrap();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut strings = |member: &str| {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut archive.by_name(member).unwrap(), &mut bytes).unwrap();
        unicode_npy(&bytes, &format!("{}:{member}", path.display()))
    };
    let (paths, ids) = (strings("paths.npy"), strings("ids.npy"));
    assert_eq!(paths.len(), emb.nrows());
    ReferenceEmbeddings { paths, ids, emb }
}

/// A 1-D NumPy array of fixed-width unicode strings (`<U<n>`: n UTF-32LE code
/// units per element, NUL-padded), which ndarray-npy does not read.
fn unicode_npy(bytes: &[u8], what: &str) -> Vec<String> {
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{what}: not .npy");
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12),
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).unwrap();
    let descr = header.split("'descr':").nth(1).unwrap().trim_start().trim_start_matches('\'');
    assert!(descr.starts_with("<U"), "{what}: expected a little-endian unicode array, header {header}");
    let width: usize = descr[2..].split('\'').next().unwrap().parse().unwrap();
    bytes[start + header_len..]
        .chunks_exact(width * 4)
        .map(|element| {
            element
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                .take_while(|&c| c != 0)
                .map(|c| char::from_u32(c).unwrap())
                .collect()
        })
        .collect()
}

pub fn repo_models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models")
}
