//! `visage data pack` and `visage data info` through the real binary, on the
//! MXNet-written fixture of visage-data and on a folder made here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::{ImageEncoder, Rgb, RgbImage};

fn visage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage")).args(args).output().expect("visage runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-data-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mxnet_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../visage-data/tests/fixtures/mxnet_written/train.rec")
}

#[test]
fn info_reports_the_mxnet_written_file() {
    let out = visage(&["data", "info", "--json", mxnet_fixture().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(json["bytes"], 4480);
    assert_eq!(json["records"], 10);
    assert_eq!(json["images"], 6);
    assert_eq!(json["id_range"], serde_json::json!([7, 10]));
    assert_eq!(json["identities"], 3);
    assert_eq!(json["first_labels"], serde_json::json!([0, 0, 1, 1, 1, 2]));

    let out = visage(&["data", "info", "--first", "3", mxnet_fixture().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("identities  3 (header id range 7..10)"), "{stdout}");
    assert!(stdout.contains("first labels 0 0 1\n"), "{stdout}");
}

#[test]
fn pack_then_info_and_the_errors_users_meet() {
    let dir = scratch("pack");
    let faces = dir.join("faces");
    for (identity, count) in [("ann", 3u8), ("ben", 2)] {
        std::fs::create_dir_all(faces.join(identity)).unwrap();
        for i in 0..count {
            let img = RgbImage::from_fn(112, 112, |x, y| Rgb([x as u8, y as u8, 40 * i]));
            let mut png = Vec::new();
            image::codecs::png::PngEncoder::new(&mut png).write_image(img.as_raw(), 112, 112, image::ExtendedColorType::Rgb8).unwrap();
            std::fs::write(faces.join(identity).join(format!("{i}.png")), png).unwrap();
        }
    }
    let rec = dir.join("train.rec");
    let (faces_arg, rec_arg) = (faces.to_str().unwrap(), rec.to_str().unwrap());

    let out = visage(&["data", "pack", faces_arg, "--out", rec_arg]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("pass --aligned"), "{}", text(&out.stderr));

    let out = visage(&["data", "pack", faces_arg, "--out", rec_arg, "--aligned"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(": 5 images of 2 identities (0 JPEG copied, 5 re-encoded at quality 95), 0 skipped"), "{stdout}");
    assert!(stdout.contains("image sizes: 112×112: 5"), "{stdout}");

    let out = visage(&["data", "info", "--json", rec_arg]);
    let json: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(json["id_range"], serde_json::json!([6, 8]));
    assert_eq!(json["first_labels"], serde_json::json!([0, 0, 0, 1, 1]));

    // A truncated copy: refused, naming the file, exit 2.
    let bytes = std::fs::read(&rec).unwrap();
    std::fs::write(&rec, &bytes[..bytes.len() - 8]).unwrap();
    let out = visage(&["data", "info", rec_arg]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with(&format!("visage: {rec_arg}: the last indexed record (key 7 at byte")), "{stderr}");
    assert!(stderr.trim_end().ends_with("truncated"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}
