//! `visage analyze`, `verify` and `quality` through the real binary, on the
//! photos and models bundled in the repository (examples/photos, models/):
//! what the README's first command runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn visage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage")).args(args).env_remove("VISAGE_MODELS_DIR").output().expect("visage runs")
}

fn photos() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/photos")
}

fn photo(name: &str) -> String {
    photos().join(name).display().to_string()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-analyze-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `obama_3.jpg` → `obama`; group photos (no digit suffix) → `None`.
fn person_in_name(file: &str) -> Option<String> {
    let stem = Path::new(file).file_stem()?.to_str()?;
    let (name, number) = stem.rsplit_once('_')?;
    number.parse::<u32>().ok().map(|_| name.to_string())
}

#[test]
fn analyze_groups_the_bundled_photos_by_person() {
    let (report, json) = (scratch("report.html"), scratch("summary.json"));
    let out = visage(&["analyze", photos().to_str().unwrap(), "--report", report.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(summary["photos"], 19);
    assert_eq!(summary["photos_with_faces"], 19);
    let faces = summary["faces"].as_array().unwrap();

    // The largest face of each single-person photo names its person.
    let mut largest: HashMap<String, (f64, u64)> = HashMap::new();
    for face in faces {
        let file = face["file"].as_str().unwrap().to_string();
        let b: Vec<f64> = face["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let area = (b[2] - b[0]) * (b[3] - b[1]);
        let person = face["person"].as_u64().unwrap();
        if largest.get(&file).is_none_or(|(a, _)| area > *a) {
            largest.insert(file, (area, person));
        }
    }
    let mut person_of_name: HashMap<String, u64> = HashMap::new();
    for (file, (_, person)) in &largest {
        let Some(name) = person_in_name(file) else { continue };
        let known = *person_of_name.entry(name.clone()).or_insert(*person);
        assert_eq!(known, *person, "{file}: {name} split over two persons");
    }
    assert_eq!(person_of_name.len(), 5);
    let mut distinct: Vec<u64> = person_of_name.values().copied().collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "two people merged: {person_of_name:?}");
    // Obama (7 photos + the group photo) is the largest group: person 0.
    assert_eq!(person_of_name["obama"], 0);

    // Group photos: each known person in them is found among their faces.
    for (file, names) in [("kit_with_rose.jpg", ["kit_harington", "rose_leslie"]), ("obama_and_biden.jpg", ["obama", "biden"])] {
        let persons: Vec<u64> = faces.iter().filter(|f| f["file"].as_str().unwrap().ends_with(file)).map(|f| f["person"].as_u64().unwrap()).collect();
        for name in names {
            assert!(persons.contains(&person_of_name[name]), "{file}: no face of {name} ({persons:?})");
        }
    }

    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<h3>Person 1 · 8 faces in 8 photos"), "Obama's group heads the report");
    assert!(html.matches("data:image/jpeg;base64,").count() >= faces.len(), "every face crop inlined");
    assert!(html.contains("data:image/png;base64,"), "heat-map inlined");
    assert!(!html.contains("src=\"http") && !html.contains("<script"), "self-contained");
}

#[test]
fn bad_files_are_reported_and_the_batch_goes_on() {
    let dir = scratch("mixed");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(photos().join("rose_leslie_1.jpg"), dir.join("good.jpg")).unwrap();
    std::fs::write(dir.join("notes.jpg"), "not a photo").unwrap();
    let jpeg = std::fs::read(photos().join("rose_leslie_2.jpg")).unwrap();
    std::fs::write(dir.join("truncated.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    let (report, json) = (scratch("mixed.html"), scratch("mixed.json"));
    let args = ["analyze", dir.to_str().unwrap(), "--report", report.to_str().unwrap(), "--json", json.to_str().unwrap()];
    let out = visage(&args);
    assert!(out.status.success(), "one photo succeeded: exit 0\n{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("notes.jpg: not an image"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(summary["photos_with_faces"], 1);
    let failures: Vec<&str> = summary["failures"].as_array().unwrap().iter().map(|f| f["file"].as_str().unwrap()).collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(stderr.contains("truncated.jpg: truncated JPEG"), "{stderr}");

    let strict = visage(&[&args[..], &["--strict"]].concat());
    assert_eq!(strict.status.code(), Some(2), "--strict fails on any bad photo");
}

#[test]
fn verify_tells_same_from_different() {
    let same = visage(&["verify", "--json", &photo("obama_1.jpg"), &photo("obama_7.jpg")]);
    assert!(same.status.success(), "{}", text(&same.stderr));
    let verdict: serde_json::Value = serde_json::from_str(&text(&same.stdout)).unwrap();
    assert_eq!(verdict["same_person"], true);
    // The default recogniser's same_person_cosine: FAR 1e-3 on shared/data/faces_dev (docs/accuracy.md).
    assert_eq!(verdict["threshold"].as_f64().unwrap() as f32, 0.34);
    assert!(verdict["cosine"].as_f64().unwrap() > 0.6);
    assert!(verdict["faces"][0]["magnitude"].as_f64().unwrap() > 1.0);

    // biden_2.jpg has background faces: the largest (Biden) is compared.
    let different = visage(&["verify", "--json", &photo("obama_1.jpg"), &photo("biden_2.jpg")]);
    let verdict: serde_json::Value = serde_json::from_str(&text(&different.stdout)).unwrap();
    assert_eq!(verdict["same_person"], false);
    assert!(verdict["cosine"].as_f64().unwrap() < 0.3);
    assert_eq!(verdict["faces"][1]["faces_in_photo"], 3);

    let missing = visage(&["verify", &photo("obama_1.jpg"), "/nonexistent/b.jpg"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("/nonexistent/b.jpg: cannot read"), "{}", text(&missing.stderr));
}

#[test]
fn quality_ranks_by_magnitude_and_draws_a_montage() {
    let montage = scratch("quality.png");
    let out = visage(&["quality", "--json", "--columns", "6", photos().to_str().unwrap(), "--montage", montage.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 24);
    let magnitudes: Vec<f64> = rows.iter().map(|r| r["magnitude"].as_f64().unwrap()).collect();
    assert!(magnitudes.windows(2).all(|w| w[0] >= w[1]), "best first: {magnitudes:?}");
    // The worst faces are the blurred background faces of biden_2.jpg, far below any portrait.
    assert!(rows[23]["file"].as_str().unwrap().ends_with("biden_2.jpg"));
    assert!(magnitudes[23] < 0.6 * magnitudes[0]);
    // 24 tiles in rows of 6: 4 rows of 112 + 18 px captions, 6 px gaps.
    let picture = image::open(&montage).unwrap();
    assert_eq!((picture.width(), picture.height()), (6 + 6 * 118, 6 + 4 * 136));
}
