//! `visage detect` and `visage embed` through the real binary, on the shared
//! photos and models (`shared/data` beside the repository).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn visage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage")).args(args).output().expect("visage runs")
}

fn faces() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/faces");
    assert!(dir.is_dir(), "{}: shared photos not found", dir.display());
    dir
}

fn photo(path: &str) -> String {
    faces().join(path).display().to_string()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-infer-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn detect_prints_json_lines_and_draws() {
    let drawing = scratch("t1.png");
    // SCRFD is not bundled (non-commercial licence): its file comes from the shared models.
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/models");
    let out = visage(&[
        "detect",
        "--json",
        "--detector",
        "scrfd",
        "--models-dir",
        models.to_str().unwrap(),
        &photo("_multi/insightface_t1.jpg"),
        "--draw",
        drawing.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    let found = json["faces"].as_array().unwrap();
    assert_eq!(found.len(), 6);
    assert_eq!((json["width"].as_u64(), json["height"].as_u64()), (Some(1280), Some(886)));
    for face in found {
        assert!(face["score"].as_f64().unwrap() >= 0.5);
        assert_eq!(face["landmarks"].as_array().unwrap().len(), 5);
    }
    let drawn = image::open(&drawing).unwrap();
    assert_eq!((drawn.width(), drawn.height()), (1280, 886));
}

#[test]
fn detect_table_with_max_faces() {
    let out = visage(&["detect", "--max-faces", "1", &photo("_multi/fr_two_people.jpg")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "header + one face: {stdout}");
    assert!(lines[1].contains("fr_two_people.jpg\t0\t"), "{stdout}");
}

#[test]
fn embed_writes_one_row_per_face_and_skips_bad_items() {
    let not_an_image = scratch("not_an_image.jpg");
    std::fs::write(&not_an_image, b"not a photo").unwrap();
    let (npy, csv) = (scratch("emb.npy"), scratch("faces.csv"));
    let args = [
        "embed",
        &photo("obama/obama.jpg"),
        not_an_image.to_str().unwrap(),
        &photo("_multi/fr_two_people.jpg"),
        "--out",
        npy.to_str().unwrap(),
        "--index",
        csv.to_str().unwrap(),
    ];
    let out = visage(&args);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("not_an_image.jpg: not an image"), "{stderr}");

    let emb: ndarray::Array2<f32> = ndarray_npy::read_npy(&npy).unwrap();
    assert_eq!(emb.dim(), (3, 128));
    for row in emb.outer_iter() {
        assert!((row.dot(&row) - 1.0).abs() < 1e-4);
    }
    let index = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = index.lines().collect();
    assert_eq!(lines[0], "file,face,x1,y1,x2,y2,det_score,magnitude,lx0,ly0,lx1,ly1,lx2,ly2,lx3,ly3,lx4,ly4");
    assert_eq!(lines.len(), 4);
    assert!(lines[1].contains("obama.jpg,0,") && lines[3].contains("fr_two_people.jpg,1,"), "{index}");
    assert!(lines[1..].iter().all(|l| l.split(',').count() == 18));

    // --strict: the same batch fails.
    let mut strict = args.to_vec();
    strict.push("--strict");
    assert_eq!(visage(&strict).status.code(), Some(2));
}

#[test]
fn embed_aligned_crop_as_is_and_all_bad_is_exit_2() {
    let (npy, csv) = (scratch("aligned.npy"), scratch("aligned.csv"));
    let out =
        visage(&["embed", "--aligned", &photo("tom_hanks/Tom_Hanks_54745.png"), "--out", npy.to_str().unwrap(), "--index", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let emb: ndarray::Array2<f32> = ndarray_npy::read_npy(&npy).unwrap();
    assert_eq!(emb.dim(), (1, 128));

    let (npy, csv) = (scratch("none.npy"), scratch("none.csv"));
    let out = visage(&["embed", &photo("_multi/insightface_t1.jpg"), "--aligned", "--out", npy.to_str().unwrap(), "--index", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is not an aligned crop (expected 112×112"));
}
