//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use image::{ImageEncoder, RgbImage};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fresh, empty scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-data-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Copies the MXNet-written fixture into a scratch folder (to corrupt it there).
pub fn copy_mxnet_fixture(name: &str) -> PathBuf {
    let dir = scratch(name);
    for file in ["train.rec", "train.idx"] {
        std::fs::copy(fixtures().join("mxnet_written").join(file), dir.join(file)).unwrap();
    }
    dir
}

pub fn encode_png(image: &RgbImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(image.as_raw(), image.width(), image.height(), image::ExtendedColorType::Rgb8)
        .unwrap();
    bytes
}

pub fn encode_jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality).encode_image(image).unwrap();
    bytes
}

/// A smooth picture that differs per `seed`.
pub fn gradient(width: u32, height: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| image::Rgb([(30 + 9 * x + 17 * seed) as u8, (50 + 7 * y + 5 * seed) as u8, (200 - 3 * (x + y)) as u8]))
}

/// The image folder behind `tests/fixtures/rust_written`: three identities,
/// PNG and JPEG files (re-encoded and copied paths), one file that is not an
/// image (reported and skipped). Returns the folder.
pub fn write_pack_source_folder(root: &Path) {
    let files: [(&str, &str, u32); 6] =
        [("alice", "1.png", 1), ("alice", "2.jpg", 2), ("bob", "a.jpg", 3), ("carol", "x.png", 4), ("carol", "y.png", 5), ("carol", "z.jpg", 0)];
    for (identity, name, seed) in files {
        std::fs::create_dir_all(root.join(identity)).unwrap();
        let bytes = if seed == 0 {
            b"this is not a JPEG".to_vec()
        } else if name.ends_with(".png") {
            encode_png(&gradient(16, 16, seed))
        } else {
            encode_jpeg(&gradient(16, 16, seed), 90)
        };
        std::fs::write(root.join(identity).join(name), bytes).unwrap();
    }
}
