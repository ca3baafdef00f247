//! Seeds that no committed file provides, made with the libraries' own
//! writers so they are valid to begin with: a gallery's log, snapshot,
//! configuration and export, a keys file, multipart bodies, `.rec`/`.idx`
//! pairs in the `recordio_idx` split and small `.npy` matrices.
//! `VISAGE_FUZZ_MAKE_SEEDS=<folder>` writes them to `<folder>/<target>/`.

use std::fs;
use std::path::Path;

use visage_gallery::{FaceSample, GalleryStore};

use crate::harness::{fuzz_iresnet, fuzz_mobilefacenet, gallery_test_config};

fn put(out: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = out.join(target);
    fs::create_dir_all(&dir).expect("seed folder");
    fs::write(dir.join(name), bytes).expect("seed file");
}

fn face(values: [f32; 4], source: &str) -> FaceSample {
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    FaceSample { embedding: values.iter().map(|v| v / norm).collect(), magnitude: norm, bbox: Some([1.0, 2.0, 90.0, 99.0]), source: source.into() }
}

pub fn make_seeds(out: &Path) {
    let work = out.join("_work");
    let _ = fs::remove_dir_all(&work);

    // A gallery: enrolments (one with metadata), an extension, a removal.
    let gallery = work.join("gallery");
    {
        let store = visage_gallery::EmbeddedStore::create(&gallery, gallery_test_config()).expect("create gallery");
        store
            .enrol("ada", Some(serde_json::json!({"team": "a", "n": [1, 2.5, null, true]})), &[face([1.0, 0.5, 0.0, 0.2], "ada.jpg")])
            .expect("enrol");
        store.enrol("bo", None, &[face([0.0, 1.0, 0.3, 0.0], "bo1.jpg"), face([0.1, 1.0, 0.2, 0.0], "bo2.jpg")]).expect("enrol");
        store.enrol("ada", None, &[face([0.9, 0.6, 0.1, 0.2], "ada2.jpg")]).expect("extend");
        store.remove("bo").expect("remove");
        put(out, "gallery_wal", "log", &fs::read(gallery.join("wal.log")).expect("wal"));
        put(out, "gallery_config", "gallery.json", &fs::read(gallery.join("gallery.json")).expect("config"));
        let export = store.export().expect("export");
        put(out, "gallery_export", "export.json", serde_json::to_string_pretty(&export).expect("json").as_bytes());
        store.compact().expect("compact");
        put(out, "gallery_snapshot", "snapshot", &fs::read(gallery.join("snapshot.jsonl")).expect("snapshot"));
        store.enrol("cy", None, &[face([0.2, 0.2, 1.0, 0.0], "cy.jpg")]).expect("enrol");
        put(out, "gallery_wal", "log_after_compaction", &fs::read(gallery.join("wal.log")).expect("wal"));
    }

    // A keys file with one key of each scope.
    let keys = work.join("keys.json");
    visage_serve::add_key(&keys, visage_serve::Scope::Read, "reader").expect("add key");
    visage_serve::add_key(&keys, visage_serve::Scope::Write, "writer").expect("add key");
    put(out, "serve_keys", "keys.json", &fs::read(&keys).expect("keys"));

    // Multipart bodies as the web page and curl send them (boundary line, then body).
    let form = |parts: &[(&str, Option<&str>, Option<&str>, &[u8])]| {
        let mut body = b"XyZ-boundary\n".to_vec();
        for (name, file, content_type, bytes) in parts {
            body.extend_from_slice(b"--XyZ-boundary\r\n");
            let mut disposition = format!("Content-Disposition: form-data; name=\"{name}\"");
            if let Some(file) = file {
                disposition.push_str(&format!("; filename=\"{file}\""));
            }
            body.extend_from_slice(disposition.as_bytes());
            body.extend_from_slice(b"\r\n");
            if let Some(content_type) = content_type {
                body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--XyZ-boundary--\r\n");
        body
    };
    put(out, "serve_upload", "photo", &form(&[("photo", Some("a.jpg"), Some("image/jpeg"), b"\xff\xd8\xff\xe0fake\xff\xd9")]));
    put(
        out,
        "serve_upload",
        "enrol_form",
        &form(&[
            ("name", None, None, b"Ada Lovelace"),
            ("metadata", None, None, br#"{"team":"a"}"#),
            ("photo", Some("b.png"), None, b"\x89PNG\r\n\x1a\n"),
        ]),
    );
    put(
        out,
        "serve_upload",
        "two_photos",
        &form(&[("a", Some("a.bmp"), Some("image/bmp"), b"BM"), ("b", Some("b.webp"), Some("image/webp"), b"RIFF")]),
    );

    // `.rec` with `.idx` in the recordio_idx split, from the writer.
    let rec = work.join("seed.rec");
    {
        let mut writer = visage_data::recordio::RecordWriter::create(&rec).expect("rec writer");
        let header = visage_data::recordio::ImageRecord::with_label_vector(vec![1.0, 3.0], 0, 0, Vec::new());
        writer.write(0, &header.to_bytes()).expect("write");
        for (key, label) in [(1u64, 0.0f32), (2, 1.0)] {
            let record = visage_data::recordio::ImageRecord::with_scalar_label(label, key, 0, b"\xff\xd8\xff\xe0not a real jpeg\xff\xd9".to_vec());
            writer.write(key, &record.to_bytes()).expect("write");
        }
        writer.finish().expect("finish");
    }
    let rec_bytes = fs::read(&rec).expect("rec");
    let idx_bytes = fs::read(rec.with_extension("idx")).expect("idx");
    let mut joined = (idx_bytes.len() as u16).to_le_bytes().to_vec();
    joined.extend_from_slice(&idx_bytes);
    joined.extend_from_slice(&rec_bytes);
    put(out, "recordio_idx", "writer", &joined);
    put(out, "recordio_scan", "writer", &rec_bytes);

    // Small .npy matrices: v1 float32 and float64, Fortran order, and a 1-D array.
    let npy = |descr: &str, fortran: bool, shape: &str, data: &[u8]| {
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}", if fortran { "True" } else { "False" });
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    };
    let f32s: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let f64s: Vec<u8> = [1.0f64, -2.0, 0.5, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    put(out, "npy", "f4_2x3", &npy("<f4", false, "(2, 3)", &f32s));
    put(out, "npy", "f8_2x2", &npy("<f8", false, "(2, 2)", &f64s));
    put(out, "npy", "f4_fortran", &npy("<f4", true, "(3, 2)", &f32s));
    put(out, "npy", "f4_1d", &npy("<f4", false, "(6,)", &f32s));

    let _ = fs::remove_dir_all(&work);
}

/// ONNX exports and safetensors of the harness's tiny networks (freshly
/// initialised: the readers care about structure, not trained values).
pub fn make_model_seeds(out: &Path) {
    use visage_nn::{Backbone, BackboneShape, IResNetLayout};
    type Cpu = visage_backend::Cpu;
    let device = Default::default();
    let shapes = [
        ("iresnet_insightface", BackboneShape::IResNet(fuzz_iresnet(IResNetLayout::Insightface))),
        ("iresnet_adaface", BackboneShape::IResNet(fuzz_iresnet(IResNetLayout::Adaface))),
        ("mobilefacenet", BackboneShape::MobileFaceNet(fuzz_mobilefacenet())),
    ];
    for (name, shape) in shapes {
        let network: Backbone<Cpu> = match &shape {
            BackboneShape::IResNet(config) => Backbone::IResNet(config.init(&device).expect("tiny IResNet")),
            BackboneShape::MobileFaceNet(config) => Backbone::MobileFaceNet(config.init(&device).expect("tiny MobileFaceNet")),
        };
        put(out, "onnx", &format!("{name}.onnx"), &network.to_onnx(&shape).expect("ONNX export"));
        let state = network.state_dict(&shape);
        let metadata = [("format".to_string(), "pt".to_string())].into_iter().collect();
        put(out, "safetensors", &format!("{name}.safetensors"), &state.to_safetensors_bytes(metadata).expect("safetensors"));
    }
}

/// Small images of every decoded format and pixel layout, and a JPEG with
/// an EXIF orientation tag (the decoder rotates by it).
pub fn make_image_seeds(out: &Path) {
    use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
    let rgb = RgbImage::from_fn(12, 9, |x, y| Rgb([(x * 20) as u8, (y * 28) as u8, ((x + y) * 9) as u8]));
    let encode = |image: &DynamicImage, format: ImageFormat| {
        let mut bytes = std::io::Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).expect("encode seed image");
        bytes.into_inner()
    };
    let colour = DynamicImage::ImageRgb8(rgb.clone());
    put(out, "image_decode", "rgb.jpg", &encode(&colour, ImageFormat::Jpeg));
    put(out, "image_decode", "rgb.png", &encode(&colour, ImageFormat::Png));
    put(out, "image_decode", "rgb.webp", &encode(&colour, ImageFormat::WebP));
    put(out, "image_decode", "rgb.bmp", &encode(&colour, ImageFormat::Bmp));
    put(out, "image_decode", "gray.png", &encode(&DynamicImage::ImageLuma8(colour.to_luma8()), ImageFormat::Png));
    put(out, "image_decode", "gray.jpg", &encode(&DynamicImage::ImageLuma8(colour.to_luma8()), ImageFormat::Jpeg));
    put(out, "image_decode", "rgba16.png", &encode(&DynamicImage::ImageRgba16(colour.to_rgba16()), ImageFormat::Png));
    put(out, "image_decode", "rgba.webp", &encode(&DynamicImage::ImageRgba8(colour.to_rgba8()), ImageFormat::WebP));
    put(out, "image_decode", "rgba.bmp", &encode(&DynamicImage::ImageRgba8(colour.to_rgba8()), ImageFormat::Bmp));

    // EXIF APP1 right after SOI: a little-endian TIFF header, one IFD with
    // Orientation (0x0112, SHORT, 1 value) = 6 (rotate 90° clockwise).
    let jpeg = encode(&colour, ImageFormat::Jpeg);
    let mut tiff = b"II*\x00\x08\x00\x00\x00".to_vec();
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&6u32.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let mut exif_jpeg = jpeg[..2].to_vec();
    exif_jpeg.extend_from_slice(&[0xff, 0xe1]);
    exif_jpeg.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    exif_jpeg.extend_from_slice(&app1);
    exif_jpeg.extend_from_slice(&jpeg[2..]);
    put(out, "image_decode", "exif_rotated.jpg", &exif_jpeg);
}
