//! `visage synth` through the real binary, on the bundled Paddle ArcFace
//! MobileFaceNet and a shared aligned face crop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn visage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage")).args(args).output().expect("visage runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-synth-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn aligned_crop() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/reference/aligned/biden");
    let mut crops: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
    crops.sort();
    crops[0].display().to_string()
}

#[test]
fn a_synthesised_face_carries_its_targets_identity() {
    let out_dir = scratch("photo");
    let out = visage(&["synth", &aligned_crop(), "--aligned", "--steps", "60", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("synth.json")).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    // Under the network that made it, the 8-bit image must match its target
    // (default loss weights, a short run).
    let cosine = results[0]["cosine"].as_f64().unwrap();
    assert!(cosine >= 0.9, "cosine {cosine}");
    let image = image::open(out_dir.join(results[0]["image"].as_str().unwrap())).unwrap();
    assert_eq!((image.width(), image.height()), (112, 112));
    let grid = image::open(out_dir.join("grid.png")).unwrap();
    assert!(grid.width() > 2 * 112, "the grid shows the target beside the result");
}

#[test]
fn random_identities_and_embeddings_are_targets_too() {
    let out_dir = scratch("random");
    std::fs::create_dir_all(&out_dir).unwrap();
    let embeddings = out_dir.join("targets.npy");
    let rows = ndarray::Array2::<f32>::from_shape_fn((2, 128), |(i, j)| if j == i { 1.0 } else { 0.0 });
    ndarray_npy::write_npy(&embeddings, &rows).unwrap();
    let out = visage(&["synth", embeddings.to_str().unwrap(), "--random", "1", "--steps", "3", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("synth.json")).unwrap()).unwrap();
    let targets: Vec<&str> = report["results"].as_array().unwrap().iter().map(|r| r["target"].as_str().unwrap()).collect();
    assert_eq!(targets.len(), 3);
    assert!(targets[0].ends_with("targets.npy[0]") && targets[1].ends_with("targets.npy[1]") && targets[2] == "random-0", "{targets:?}");

    // --mean: the two rows (e1, e2) become one target, the direction (e1 + e2)/√2.
    let mean_dir = scratch("mean");
    let out = visage(&["synth", embeddings.to_str().unwrap(), "--mean", "--steps", "30", "--out", mean_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(mean_dir.join("synth.json")).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert!(results[0]["target"].as_str().unwrap().starts_with("mean of") && results[0]["target"].as_str().unwrap().ends_with("(2 rows)"));
}

#[test]
fn a_target_of_the_wrong_size_is_refused_naming_it() {
    let out_dir = scratch("wrong");
    std::fs::create_dir_all(&out_dir).unwrap();
    let embedding = out_dir.join("e512.npy");
    ndarray_npy::write_npy(&embedding, &ndarray::Array1::<f32>::ones(512)).unwrap();
    let out = visage(&["synth", embedding.to_str().unwrap(), "--steps", "1", "--out", out_dir.join("o").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let message = text(&out.stderr);
    assert!(message.contains("512") && message.contains("128"), "{message}");
    let out = visage(&["synth", "--out", out_dir.join("o").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nothing to synthesise"));
}

#[test]
fn an_enrolled_identity_of_a_gallery_is_a_target() {
    let dir = scratch("gallery");
    let gallery = dir.join("gallery");
    let photos = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/photos");
    let enrol = visage(&["gallery", "enrol", "obama", photos.join("obama_1.jpg").to_str().unwrap(), "--gallery", gallery.to_str().unwrap()]);
    assert!(enrol.status.success(), "{}", text(&enrol.stderr));
    let out_dir = dir.join("out");
    let out = visage(&["synth", "--gallery", gallery.to_str().unwrap(), "--identity", "obama", "--steps", "30", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("synth.json")).unwrap()).unwrap();
    let result = &report["results"][0];
    assert!(result["target"].as_str().unwrap().ends_with(":obama"));
    // The default gallery recogniser is the bundled Paddle model with rewritten
    // PRelu nodes: the same network synthesis runs through, so the template is reachable.
    assert!(result["cosine"].as_f64().unwrap() > 0.8, "{result}");
    let missing = visage(&["synth", "--gallery", gallery.to_str().unwrap(), "--identity", "nobody", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("nobody"), "{}", text(&missing.stderr));
}
