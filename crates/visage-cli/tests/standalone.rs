//! The binary on its own: copied alone into an empty folder, with an empty
//! cache and no model folder configured, it runs `visage analyze` on two
//! photos (the default models come out of the binary; ONNX Runtime is
//! fetched from its PyPI wheel into the new cache), lists its models, and
//! says where to put a model it does not carry.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Alone {
    root: PathBuf,
    binary: PathBuf,
    work: PathBuf,
    cache: PathBuf,
}

impl Alone {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!("visage-standalone-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (bin, work, cache) = (root.join("bin"), root.join("work"), root.join("cache"));
        for dir in [&bin, &work, &cache] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let binary = bin.join("visage");
        std::fs::copy(env!("CARGO_BIN_EXE_visage"), &binary).unwrap();
        let photos = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/photos");
        for name in ["obama_and_biden.jpg", "kit_with_rose.jpg"] {
            std::fs::copy(photos.join(name), work.join(name)).unwrap();
        }
        Self { root, binary, work, cache }
    }

    /// The copied binary, run in the empty work folder with only the new cache.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.binary)
            .args(args)
            .current_dir(&self.work)
            .env("VISAGE_CACHE", &self.cache)
            .env_remove("VISAGE_MODELS_DIR")
            .env_remove("ORT_DYLIB_PATH")
            .env_remove("XDG_CACHE_HOME")
            .output()
            .expect("the copied binary runs")
    }
}

impl Drop for Alone {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn a_copied_binary_with_an_empty_cache_analyzes_photos_and_lists_its_models() {
    let alone = Alone::new();

    let out = alone.run(&["analyze", "obama_and_biden.jpg", "kit_with_rose.jpg", "--json", "summary.json", "--report", "report.html"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(alone.work.join("summary.json")).unwrap()).unwrap();
    // The same photos through the build tree's binary: the same faces and persons.
    let photos = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/photos");
    let reference_json = alone.root.join("reference.json");
    let reference = Command::new(env!("CARGO_BIN_EXE_visage"))
        .arg("analyze")
        .args([photos.join("obama_and_biden.jpg"), photos.join("kit_with_rose.jpg")])
        .arg("--json")
        .arg(&reference_json)
        .arg("--report")
        .arg(alone.root.join("reference.html"))
        .env_remove("VISAGE_MODELS_DIR")
        .output()
        .unwrap();
    assert!(reference.status.success(), "{}", text(&reference.stderr));
    let reference: serde_json::Value = serde_json::from_slice(&std::fs::read(&reference_json).unwrap()).unwrap();
    let count = |v: &serde_json::Value, key: &str| v[key].as_array().map(Vec::len).unwrap_or_else(|| panic!("no `{key}` array in {v}"));
    assert_eq!(count(&summary, "faces"), count(&reference, "faces"));
    assert_eq!(count(&summary, "persons"), count(&reference, "persons"));
    assert!(count(&summary, "faces") >= 4, "two people in each photo: {summary}");
    let magnitudes =
        |v: &serde_json::Value| -> Vec<f64> { v["faces"].as_array().unwrap().iter().map(|f| f["magnitude"].as_f64().unwrap()).collect() };
    for (a, b) in magnitudes(&summary).iter().zip(magnitudes(&reference)) {
        assert!((a - b).abs() < 1e-4 * b, "magnitudes differ: {a} vs {b}");
    }
    assert!(std::fs::metadata(alone.work.join("report.html")).unwrap().len() > 10_000);

    // The bundle was written into the new cache, and the list says so.
    let out = alone.run(&["models", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bundled_dir = PathBuf::from(list["bundled_dir"].as_str().unwrap());
    assert!(bundled_dir.starts_with(&alone.cache), "{}", bundled_dir.display());
    let models = list["models"].as_array().unwrap();
    let model = |name: &str| models.iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("{name} not listed: {list}"));
    for name in ["face_detection_yunet_2023mar_dynamic", "arcface_mobileface_128d_paddle_fastprelu", "face_detection_yunet_2023mar"] {
        let entry = model(name);
        assert_eq!((entry["status"].as_str(), entry["bundled"].as_bool()), (Some("present"), Some(true)), "{entry}");
        assert!(entry["licence"].as_str().is_some_and(|l| !l.is_empty()) && entry["sha256"].as_str().is_some_and(|s| s.len() == 64), "{entry}");
    }
    let scrfd = model("scrfd_2.5g_bnkps");
    assert_eq!((scrfd["status"].as_str(), scrfd["bundled"].as_bool()), (Some("missing"), Some(false)), "{scrfd}");
    assert!(scrfd["licence"].as_str().unwrap().contains("non-commercial"), "{scrfd}");

    // A model it does not carry: the error says where it was looked for and how to give it.
    let out = alone.run(&["detect", "--detector", "scrfd", "obama_and_biden.jpg"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("scrfd_2.5g_bnkps") && err.contains("not bundled") && err.contains("VISAGE_MODELS_DIR"), "{err}");

    // An unknown name lists where names come from (a bad argument: exit 2).
    let out = alone.run(&["detect", "--detector", "no_such_model", "obama_and_biden.jpg"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no detector called `no_such_model`"), "{}", text(&out.stderr));
}
