//! RecordIO against MXNet: the reader on files MXNet wrote
//! (`tests/fixtures/mxnet_written`, by scripts/reference/recordio_fixtures.py),
//! the writer's output pinned byte for byte in `tests/fixtures/rust_written`
//! (which the same script reads back with MXNet, see tests/fixtures/README.md),
//! and the failure modes: truncation, stale index, corrupt records.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{copy_mxnet_fixture, fixtures, scratch, write_pack_source_folder};
use serde_json::Value;
use sha2::{Digest, Sha256};
use visage_data::recordio::{frame, IdentityRange, ImageRecord, IndexSource, RecordDataset, RecordFile, RecordWriter};
use visage_data::{pack_folder, Augmentation, DecodeOptions, FaceSource, ImageFolder, Loader, LoaderConfig, Normalization, PackOptions};

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("mxnet_written/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn reads_every_field_of_the_mxnet_written_file() {
    let expected = expected();
    let rec_path = fixtures().join("mxnet_written/train.rec");
    let records = RecordFile::open(&rec_path).unwrap();
    assert!(matches!(records.index_source(), IndexSource::IdxFile(_)));
    assert_eq!(records.len(), 10);
    assert_eq!(records.file_len(), expected["file_len"].as_u64().unwrap());
    for (key, entry) in expected["records"].as_object().unwrap() {
        let key: u64 = key.parse().unwrap();
        assert_eq!(records.offset_of(key), entry["offset"].as_u64(), "key {key}");
        let record = records.read_image_record(key).unwrap();
        assert_eq!(u64::from(record.flag), entry["flag"].as_u64().unwrap(), "key {key}");
        assert_eq!(f64::from(record.label), entry["label"].as_f64().unwrap(), "key {key}");
        assert_eq!(record.id, entry["id"].as_u64().unwrap(), "key {key}");
        assert_eq!(record.id2, entry["id2"].as_u64().unwrap(), "key {key}");
        let vector: Vec<f64> = entry["label_vector"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(record.label_vector.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), vector, "key {key}");
        assert_eq!(record.image.len() as u64, entry["image_len"].as_u64().unwrap(), "key {key}");
        if let Some(sha) = entry["image_sha256"].as_str() {
            assert_eq!(sha256_hex(&record.image), sha, "key {key}");
        }
    }
    // Key 3 holds the magic at payload offset 16: MXNet split it there.
    let parts = &expected["key3_parts"];
    assert_eq!(parts[0]["cflag"], 1);
    assert_eq!(parts[0]["length"], 16);
    assert_eq!(parts[1]["cflag"], 3);
    assert_eq!(records.read_image_record(3).unwrap().id2, 0xced7_230a);
}

#[test]
fn insightface_layout_of_the_mxnet_written_file() {
    let expected = expected();
    let dataset = RecordDataset::open(&fixtures().join("mxnet_written/train.rec")).unwrap();
    assert_eq!(dataset.identity_range(), Some(IdentityRange { id_start: 7, id_end: 10 }));
    assert_eq!(dataset.num_classes(), Some(3));
    assert_eq!(dataset.len(), 6);
    let labels: Vec<u32> = (0..6).map(|i| dataset.read_image(i).unwrap().label).collect();
    assert_eq!(labels, [0, 0, 1, 1, 1, 2], "key 5's label is the first entry of its vector");
    for i in 0..6 {
        let key = dataset.image_key(i);
        assert_eq!(u64::from(dataset.read_image(i).unwrap().label), expected["records"][key.to_string()]["class_label"].as_u64().unwrap());
    }

    // Decoded pixels against PIL's decoding of the same JPEG bytes (libjpeg vs
    // the image crate's decoder: IDCT and chroma upsampling differ slightly).
    let image = dataset.load(0, &DecodeOptions::default()).unwrap().image;
    let pil: Vec<i64> = expected["key1_pil_rgb"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let diffs: Vec<i64> = image.as_raw().iter().zip(&pil).map(|(&a, &b)| (i64::from(a) - b).abs()).collect();
    let max = *diffs.iter().max().unwrap();
    let mean = diffs.iter().sum::<i64>() as f64 / diffs.len() as f64;
    assert_eq!(diffs.len(), 16 * 16 * 3);
    eprintln!("key 1 decoded vs PIL: max |Δ| {max}, mean {mean:.3}");
    assert!(max <= 3 && mean < 0.5, "max |Δ| {max}, mean {mean}");
}

#[test]
fn sequential_walk_without_index_finds_the_same_records() {
    let dir = copy_mxnet_fixture("scan");
    std::fs::remove_file(dir.join("train.idx")).unwrap();
    let scanned = RecordFile::open(&dir.join("train.rec")).unwrap();
    let indexed = RecordFile::open(&fixtures().join("mxnet_written/train.rec")).unwrap();
    assert_eq!(scanned.index_source(), &IndexSource::Scanned { corrupt_regions: 0, corrupt_bytes: 0 });
    assert_eq!(scanned.entries(), indexed.entries());
    let dataset = RecordDataset::from_records(scanned).unwrap();
    assert_eq!(dataset.len(), 6);
    assert_eq!(dataset.read_image(2).unwrap().record.id2, 0xced7_230a);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_truncated_file_is_refused_at_open_naming_it() {
    let dir = copy_mxnet_fixture("truncated");
    let rec_path = dir.join("train.rec");
    let file = std::fs::OpenOptions::new().write(true).open(&rec_path).unwrap();
    file.set_len(4480 - 10).unwrap();
    drop(file);
    let err = RecordFile::open(&rec_path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: the last indexed record (key 9 at byte 4440) is unreadable at byte 4440: part of 32 bytes ends at byte 4480, past the end of the file (4470 bytes): truncated",
            rec_path.display()
        )
    );
    // Without the index the walk reaches the same conclusion.
    std::fs::remove_file(dir.join("train.idx")).unwrap();
    let err = RecordFile::open(&rec_path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: no readable record from byte 4440 to the end (4470 bytes), truncated or corrupt", rec_path.display())),
        "{err}"
    );

    // Cut inside the index's range: the index points past the end.
    std::fs::copy(fixtures().join("mxnet_written/train.idx"), dir.join("train.idx")).unwrap();
    std::fs::OpenOptions::new().write(true).open(&rec_path).unwrap().set_len(3000).unwrap();
    let err = RecordFile::open(&rec_path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:7: offset 3644 of key 6 is past the end of the record file (3000 bytes): truncated .rec, or an index for another file",
            dir.join("train.idx").display()
        )
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bytes_after_the_last_indexed_record_mean_a_stale_index() {
    let dir = copy_mxnet_fixture("stale");
    let rec_path = dir.join("train.rec");
    let mut bytes = std::fs::read(&rec_path).unwrap();
    frame::write_record(&mut bytes, &ImageRecord::with_scalar_label(0.0, 10, 0, b"more".to_vec()).to_bytes()).unwrap();
    std::fs::write(&rec_path, &bytes).unwrap();
    let err = RecordFile::open(&rec_path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: 36 bytes follow the last indexed record (key 9 ends at byte 4480, the file has 4516)", rec_path.display())),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Overwrites 4 bytes of the record at `offset` + `at` in a copy.
fn corrupt(rec_path: &Path, position: u64, bytes: [u8; 4]) {
    let mut data = std::fs::read(rec_path).unwrap();
    data[position as usize..position as usize + 4].copy_from_slice(&bytes);
    std::fs::write(rec_path, data).unwrap();
}

#[test]
fn bad_records_are_skipped_and_counted_by_the_loader() {
    let dir = copy_mxnet_fixture("bad-records");
    let rec_path = dir.join("train.rec");
    // Key 4 (offset 2204): magic destroyed. Key 2 (offset 760): JPEG SOI
    // destroyed (payload starts after 8 framing + 24 header bytes).
    corrupt(&rec_path, 2204, [0, 0, 0, 0]);
    corrupt(&rec_path, 760 + 8 + 24, *b"RIFF");
    let dataset = Arc::new(RecordDataset::open(&rec_path).unwrap());
    let err = dataset.read_image(3).unwrap_err().to_string();
    assert_eq!(err, format!("{}: record key 4 at byte 2204: expected the RecordIO magic 0xced7230a, found 0x00000000", rec_path.display()));
    let config = LoaderConfig {
        batch_size: 6,
        shuffle: false,
        drop_last: false,
        image_size: 16,
        augmentation: Augmentation::none(),
        ..LoaderConfig::default()
    };
    let loader = Loader::new(Arc::clone(&dataset), config).unwrap();
    let batch = loader.batch(0, 0).unwrap();
    assert_eq!(batch.images.shape(), [4, 3, 16, 16]);
    assert_eq!(batch.labels, [0, 1, 1, 2]);
    assert_eq!(batch.sample_indices, [0, 2, 4, 5]);
    let skipped: Vec<usize> = batch.skipped.iter().map(|s| s.sample_index).collect();
    assert_eq!(skipped, [1, 3]);
    assert!(batch.skipped[0].message.contains("train.rec#key 2: "), "{}", batch.skipped[0].message);
    assert_eq!(loader.skipped_total(), 2);
    // The bad magic in the middle: a walk without the index steps over it.
    std::fs::remove_file(dir.join("train.idx")).unwrap();
    let scanned = RecordFile::open(&rec_path).unwrap();
    assert_eq!(scanned.index_source(), &IndexSource::Scanned { corrupt_regions: 1, corrupt_bytes: 2920 - 2204 });
    assert_eq!(scanned.len(), 9);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn writer_round_trip_with_split_records() {
    let dir = scratch("roundtrip");
    let rec_path = dir.join("out.rec");
    let magic = 0xced7_230au32.to_le_bytes();
    let payloads: Vec<Vec<u8>> = vec![
        ImageRecord::with_scalar_label(3.0, 1, 0xced7_230a, [&magic[..], b"jpeg", &magic].concat()).to_bytes(),
        ImageRecord::with_label_vector(vec![1.0, 2.0, 3.0], 2, 0, vec![7; 1001]).to_bytes(),
        Vec::new(),
    ];
    let mut writer = RecordWriter::create(&rec_path).unwrap();
    for (key, payload) in payloads.iter().enumerate() {
        writer.write(100 + key as u64, payload).unwrap();
    }
    assert!(!rec_path.exists(), "nothing at the target before finish");
    writer.finish().unwrap();
    let records = RecordFile::open(&rec_path).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("out.idx")).unwrap().lines().next(), Some("100\t0"));
    for (key, payload) in payloads.iter().enumerate() {
        assert_eq!(&records.read(100 + key as u64).unwrap(), payload);
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2, "no temporary file left");
    // An abandoned writer leaves nothing behind.
    drop(RecordWriter::create(&dir.join("abandoned.rec")).unwrap());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

/// `tests/fixtures/rust_written` is what `pack_folder` makes of the folder in
/// `common::write_pack_source_folder`; MXNet read it (README.md there). Run
/// with VISAGE_UPDATE_FIXTURES=1 to rewrite it after a deliberate change (that
/// run fails on purpose), then re-run the Python check and the test.
#[test]
fn pack_output_is_the_fixture_mxnet_read() {
    let dir = scratch("pack");
    let source = dir.join("faces");
    write_pack_source_folder(&source);
    let folder = ImageFolder::scan(&source).unwrap();
    assert_eq!(folder.class_names(), ["alice", "bob", "carol"]);
    let rec_path = dir.join("train.rec");
    let mut progress = Vec::new();
    let options = PackOptions { chunk_size: 4, ..PackOptions::default() };
    let report = pack_folder(&folder, &rec_path, &options, |done, total| progress.push((done, total))).unwrap();
    assert_eq!(progress, [(4, 6), (6, 6)]);
    assert_eq!((report.images_written, report.identities, report.jpeg_copied, report.reencoded), (5, 3, 2, 3));
    assert_eq!(report.sizes, [((16, 16), 5)]);
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].0.ends_with("carol/z.jpg"));
    assert_eq!(report.skipped[0].1, "not an image (expected JPEG, PNG, WebP or BMP)");

    let dataset = RecordDataset::open(&rec_path).unwrap();
    assert_eq!(dataset.identity_range(), Some(IdentityRange { id_start: 6, id_end: 9 }));
    let labels: Vec<u32> = (0..5).map(|i| dataset.read_image(i).unwrap().label).collect();
    assert_eq!(labels, [0, 0, 1, 2, 2]);
    let ranges: Vec<Vec<f32>> = (6..9).map(|k| dataset.records().read_image_record(k).unwrap().label_vector).collect();
    assert_eq!(ranges, [vec![1.0, 3.0], vec![3.0, 4.0], vec![4.0, 6.0]]);
    // JPEG bytes are copied as they are: key 2 is alice/2.jpg.
    assert_eq!(dataset.read_image(1).unwrap().record.image, std::fs::read(source.join("alice/2.jpg")).unwrap());

    let fixture = fixtures().join("rust_written");
    let written = (std::fs::read(&rec_path).unwrap(), std::fs::read(dir.join("train.idx")).unwrap());
    if std::env::var_os("VISAGE_UPDATE_FIXTURES").is_some() {
        std::fs::create_dir_all(&fixture).unwrap();
        std::fs::write(fixture.join("train.rec"), &written.0).unwrap();
        std::fs::write(fixture.join("train.idx"), &written.1).unwrap();
        let images: serde_json::Map<String, Value> =
            (0..5).map(|i| (dataset.image_key(i).to_string(), serde_json::json!({ "label": labels[i], "size": [16, 16] }))).collect();
        let expected = serde_json::json!({ "id_range": [6, 9], "images": images });
        std::fs::write(fixture.join("expected.json"), serde_json::to_string_pretty(&expected).unwrap()).unwrap();
        // A run that rewrote the golden files compared nothing: it must not pass.
        panic!("rewrote {}: check it with the MXNet script (README.md there), then run again without VISAGE_UPDATE_FIXTURES", fixture.display());
    }
    assert!(written.0 == std::fs::read(fixture.join("train.rec")).unwrap(), "train.rec differs from the fixture MXNet checked");
    assert!(written.1 == std::fs::read(fixture.join("train.idx")).unwrap(), "train.idx differs from the fixture MXNet checked");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn loader_reads_the_packed_folder_and_the_folder_alike() {
    let dir = scratch("folder-vs-rec");
    let source = dir.join("faces");
    write_pack_source_folder(&source);
    std::fs::remove_file(source.join("carol/z.jpg")).unwrap();
    for name in ["1.png", "x.png", "y.png"] {
        // Only JPEG files are copied unchanged, so compare on an all-JPEG folder.
        let identity = if name == "1.png" { "alice" } else { "carol" };
        let png = source.join(identity).join(name);
        let decoded = visage_image::load_rgb(&png, &DecodeOptions::default()).unwrap();
        std::fs::write(png.with_extension("jpg"), common::encode_jpeg(&decoded, 90)).unwrap();
        std::fs::remove_file(png).unwrap();
    }
    let folder = Arc::new(ImageFolder::scan(&source).unwrap());
    pack_folder(&folder, &dir.join("train.rec"), &PackOptions::default(), |_, _| {}).unwrap();
    let dataset = Arc::new(RecordDataset::open(&dir.join("train.rec")).unwrap());
    let config = LoaderConfig { batch_size: 2, seed: 5, normalization: Normalization::MAGFACE, ..LoaderConfig::default() };
    let from_folder: Vec<_> = Loader::new(folder, config.clone()).unwrap().iter_epoch(3, 0).unwrap().collect();
    let from_rec: Vec<_> = Loader::new(dataset, config).unwrap().iter_epoch(3, 0).unwrap().collect();
    assert_eq!(from_folder.len(), 2);
    for (a, b) in from_folder.iter().zip(&from_rec) {
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.images, b.images);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn index_problems_name_the_line_or_the_missing_key() {
    let dir = copy_mxnet_fixture("index-problems");
    let (rec_path, idx_path) = (dir.join("train.rec"), dir.join("train.idx"));
    let original = std::fs::read_to_string(&idx_path).unwrap();

    std::fs::write(&idx_path, original.replace("2\t760\n", "")).unwrap();
    let err = RecordDataset::open(&rec_path).unwrap_err().to_string();
    assert_eq!(err, format!("{}: header record 0 says images are keys 1..6 but the index has 5 of them (key 2 is missing)", rec_path.display()));

    std::fs::write(&idx_path, original.replace("3\t1480\n", "3 1480 extra\n")).unwrap();
    let err = RecordFile::open(&rec_path).unwrap_err().to_string();
    assert_eq!(err, format!("{}:4: expected 'key<TAB>byte_offset', found \"3 1480 extra\"", idx_path.display()));

    std::fs::write(&idx_path, original.replace("3\t1480\n", "3\t1482\n")).unwrap();
    let err = RecordFile::open(&rec_path).unwrap_err().to_string();
    assert_eq!(err, format!("{}:4: offset 1482 of key 3 is not a multiple of 4 (records are 4-byte aligned)", idx_path.display()));

    std::fs::write(&idx_path, original.replace("3\t1480\n", "2\t1480\n")).unwrap();
    let err = RecordFile::open(&rec_path).unwrap_err().to_string();
    assert_eq!(err, format!("{}: key 2 is listed twice", idx_path.display()));
    std::fs::remove_dir_all(dir).unwrap();
}
