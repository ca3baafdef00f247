//! One body per fuzz target: each hands the bytes to the public reader that a
//! command or the service would use on a user's file, exactly as it would
//! (through a file where the reader takes a path). A reader may refuse the
//! bytes with an error — that is the expected outcome for almost every
//! input — but must not panic, abort, hang or exhaust memory.
//!
//! Shared, through `#[path]`, by the libFuzzer binary (fuzz/src/main.rs) and
//! by the plain-`cargo test` replay of the committed corpora and regressions
//! (crates/visage-cli/tests/fuzz_regressions.rs), so the two cannot drift.

#![allow(dead_code)]

mod upload;

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};

use visage_gallery::{DecisionThreshold, GalleryConfig, GalleryStore, QualityPolicy, ThresholdOrigin};

/// A reader under fuzzing: `name` is also its folder under `fuzz/corpus/`
/// and `fuzz/regressions/`.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

pub const TARGETS: &[Target] = &[
    Target { name: "image_decode", run: image_decode },
    Target { name: "pickle_plain", run: pickle_plain },
    Target { name: "pickle_torch", run: pickle_torch },
    Target { name: "verification_bin", run: verification_bin },
    Target { name: "torch_zip", run: torch_zip },
    Target { name: "safetensors", run: safetensors },
    Target { name: "onnx", run: onnx },
    Target { name: "recordio_scan", run: recordio_scan },
    Target { name: "recordio_idx", run: recordio_idx },
    Target { name: "npy", run: npy },
    Target { name: "embeddings_csv", run: embeddings_csv },
    Target { name: "scores_csv", run: scores_csv },
    Target { name: "pairs", run: pairs },
    Target { name: "labels", run: labels },
    Target { name: "erc_csv", run: erc_csv },
    Target { name: "ijb_meta", run: ijb_meta },
    Target { name: "heads_case", run: heads_case },
    Target { name: "train_config", run: train_config },
    Target { name: "detector_config", run: detector_config },
    Target { name: "recognizer_config", run: recognizer_config },
    Target { name: "gallery_wal", run: gallery_wal },
    Target { name: "gallery_snapshot", run: gallery_snapshot },
    Target { name: "gallery_config", run: gallery_config },
    Target { name: "gallery_export", run: gallery_export },
    Target { name: "serve_keys", run: serve_keys },
    Target { name: "serve_upload", run: upload::serve_upload },
];

pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The pixel limit while fuzzing: the default (100 Mpx) lets a few hundred
/// bytes of PNG legitimately decode to 300 MB, which is slow and reveals
/// nothing; the check itself is the same code whatever the limit.
const FUZZ_MAX_PIXELS: u64 = 4_000_000;

/// Embedding length of the fuzzed galleries: small, so a snapshot or log
/// record with valid templates is within a mutation's reach.
const GALLERY_DIM: usize = 4;

thread_local! {
    /// A scratch folder per thread (tests replay in parallel), reused by
    /// every input of that thread: creating one per input would dominate.
    static SCRATCH: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// `<scratch>/<name>`, the folder created on first use and emptied of
/// nothing: callers overwrite the files they use.
fn scratch(name: &str) -> PathBuf {
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        let dir = slot.get_or_insert_with(|| {
            let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
            let dir = base.join(format!("visage-fuzz-{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], ""));
            fs::create_dir_all(&dir).expect("scratch folder");
            dir
        });
        dir.join(name)
    })
}

/// Removes this thread's scratch folder (the replay runs each input on a
/// thread of its own, which would otherwise leave one folder per input).
pub fn clear_scratch() {
    SCRATCH.with(|cell| {
        if let Some(dir) = cell.borrow_mut().take() {
            let _ = fs::remove_dir_all(dir);
        }
    });
}

/// Writes `bytes` to `<scratch>/<name>` and returns the path.
fn file_with(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch(name);
    fs::write(&path, bytes).expect("scratch file");
    path
}

/// Splits one input into two files' contents: the first two bytes (little
/// endian) give the first part's length, the rest is cut there.
fn split2(data: &[u8]) -> (&[u8], &[u8]) {
    if data.len() < 2 {
        return (&[], data);
    }
    let first = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
    data[2..].split_at(first)
}

pub fn image_decode(data: &[u8]) {
    let options = visage_infer::DecodeOptions { max_pixels: FUZZ_MAX_PIXELS };
    let _ = visage_infer::decode_rgb(data, Path::new("fuzz.img"), &options);
}

pub fn pickle_plain(data: &[u8]) {
    let _ = visage_pickle::parse(data, visage_pickle::Options::PLAIN_DATA);
}

pub fn pickle_torch(data: &[u8]) {
    let _ = visage_pickle::parse(data, visage_pickle::Options::TORCH);
}

pub fn verification_bin(data: &[u8]) {
    let path = file_with("set.bin", data);
    let _ = visage_eval::io::verification_bin::read_verification_bin(&path);
}

pub fn torch_zip(data: &[u8]) {
    let path = file_with("model.pth", data);
    let _ = visage_nn::read_pytorch_checkpoint(&path, visage_nn::CheckpointFamily::Auto);
}

pub fn safetensors(data: &[u8]) {
    let _ = visage_nn::StateDict::from_safetensors_bytes(data, Path::new("fuzz.safetensors"));
    let path = file_with("weights.safetensors", data);
    let _ = visage_nn::StateDict::read_safetensors_metadata(&path);
}

/// The smallest IResNet of a layout (one block a stage, two channels): the
/// ONNX seeds are exported from it (fuzz/src/seeds.rs), so they map a whole
/// graph in a few kilobytes; the graph walk is the same code at any depth.
pub fn fuzz_iresnet(layout: visage_nn::IResNetLayout) -> visage_nn::IResNetConfig {
    visage_nn::IResNetConfig {
        blocks_per_stage: [1, 1, 1, 1],
        stage_widths: [2, 2, 2, 2],
        stem_width: 2,
        embedding_size: 2,
        dropout: 0.0,
        input_size: 16,
        layout,
    }
}

/// The smallest MobileFaceNet, as [`fuzz_iresnet`].
pub fn fuzz_mobilefacenet() -> visage_nn::MobileFaceNetConfig {
    visage_nn::MobileFaceNetConfig {
        blocks_per_stage: [1, 1, 1, 1],
        stem_width: 2,
        body_width: 2,
        stem_groups: 2,
        residual_expansion: [1, 1, 1, 1],
        downsample_expansion: [1, 1, 1],
        head_width: 2,
        embedding_size: 2,
        input_size: 16,
    }
}

pub fn onnx(data: &[u8]) {
    let path = file_with("model.onnx", data);
    for layout in [visage_nn::IResNetLayout::Insightface, visage_nn::IResNetLayout::Adaface] {
        let _ = visage_nn::read_onnx_iresnet(&path, &fuzz_iresnet(layout));
    }
    let _ = visage_nn::read_onnx_mobilefacenet(&path, &fuzz_mobilefacenet());
}

/// Reads what `visage data info` reads: the header and the first records.
fn read_dataset(records: visage_data::recordio::RecordFile) {
    for entry in records.entries().iter().take(8) {
        let _ = records.read_image_record(entry.key);
    }
    if let Ok(dataset) = visage_data::recordio::RecordDataset::from_records(records) {
        for i in 0..dataset.len().min(8) {
            let _ = dataset.read_image(i);
        }
    }
}

pub fn recordio_scan(data: &[u8]) {
    let rec = file_with("scan.rec", data);
    if let Ok(records) = visage_data::recordio::RecordFile::open_scan(&rec) {
        read_dataset(records);
    }
}

/// The input is split ([`split2`]) into the `.idx` text and the `.rec` bytes.
pub fn recordio_idx(data: &[u8]) {
    let (idx, rec) = split2(data);
    let idx_path = file_with("indexed.idx", idx);
    let rec_path = file_with("indexed.rec", rec);
    if let Ok(records) = visage_data::recordio::RecordFile::open_with_index(&rec_path, &idx_path) {
        read_dataset(records);
    }
}

pub fn npy(data: &[u8]) {
    let path = file_with("embeddings.npy", data);
    let _ = visage_eval::io::embeddings::read_embeddings(&path);
}

pub fn embeddings_csv(data: &[u8]) {
    let path = file_with("embeddings.csv", data);
    let _ = visage_eval::io::embeddings::read_embeddings(&path);
}

pub fn scores_csv(data: &[u8]) {
    let path = file_with("scores.csv", data);
    let _ = visage_eval::io::scores_csv::read_scores_csv(&path);
}

pub fn pairs(data: &[u8]) {
    let path = file_with("pairs.txt", data);
    let _ = visage_eval::io::pairs::read_pair_list(&path);
}

pub fn labels(data: &[u8]) {
    let path = file_with("labels.txt", data);
    let _ = visage_eval::io::labels::read_labels(&path);
}

pub fn erc_csv(data: &[u8]) {
    let path = file_with("erc.csv", data);
    let _ = visage_eval::io::erc_csv::read_erc_csv(&path);
}

/// Every IJB metadata reader on the same bytes: they share the line reader
/// and differ in their columns.
pub fn ijb_meta(data: &[u8]) {
    use visage_eval::io::ijb_meta;
    let path = file_with("ijb_meta.txt", data);
    let _ = ijb_meta::read_face_tid_mid(&path);
    let _ = ijb_meta::read_template_pairs(&path);
    let _ = ijb_meta::read_detector_scores(&path);
    let _ = ijb_meta::read_template_subjects(&path);
}

pub fn heads_case(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = visage_heads::case::HeadCase::from_json(text);
    }
}

pub fn train_config(data: &[u8]) {
    let path = file_with("train.toml", data);
    let _ = visage_train::config::TrainConfig::load(&path);
}

pub fn detector_config(data: &[u8]) {
    let path = file_with("detector.toml", data);
    let _ = visage_infer::DetectorConfig::load(&path);
}

pub fn recognizer_config(data: &[u8]) {
    let path = file_with("recognizer.toml", data);
    let _ = visage_infer::RecognizerConfig::load(&path);
}

/// The gallery configuration of the fuzzed galleries.
pub fn gallery_test_config() -> GalleryConfig {
    GalleryConfig::new(
        GALLERY_DIM,
        "fuzz",
        QualityPolicy::default(),
        DecisionThreshold { cosine: 0.3, origin: ThresholdOrigin::Recognizer { recognizer: "fuzz".into() } },
    )
}

/// A gallery folder holding `gallery.json` (the given bytes, else the test
/// configuration), `snapshot.jsonl` and `wal.log` as given (absent when
/// `None`), opened as every command opens it: read-only, then for writing
/// (which truncates a torn log tail), then read back whole.
fn open_gallery(config: Option<&[u8]>, snapshot: Option<&[u8]>, log: Option<&[u8]>) {
    let dir = scratch("gallery");
    fs::create_dir_all(&dir).expect("scratch gallery");
    let default_config;
    let config = match config {
        Some(bytes) => bytes,
        None => {
            default_config = serde_json::to_vec(&gallery_test_config()).expect("serialisable");
            &default_config
        }
    };
    fs::write(dir.join("gallery.json"), config).expect("scratch file");
    for (name, bytes) in [("snapshot.jsonl", snapshot), ("wal.log", log)] {
        match bytes {
            Some(bytes) => fs::write(dir.join(name), bytes).expect("scratch file"),
            None => {
                let _ = fs::remove_file(dir.join(name));
            }
        }
    }
    let read_only = visage_gallery::OpenOptions { read_only: true, ..Default::default() };
    if visage_gallery::EmbeddedStore::open(&dir, read_only).is_err() {
        return;
    }
    if let Ok(store) = visage_gallery::EmbeddedStore::open(&dir, visage_gallery::OpenOptions::default()) {
        if let Ok(summaries) = store.list() {
            for summary in summaries.iter().take(4) {
                let _ = store.get(&summary.name);
            }
        }
        let _ = store.export();
        let _ = store.search(&[&[0.5; GALLERY_DIM]], 3);
    }
}

pub fn gallery_wal(data: &[u8]) {
    open_gallery(None, None, Some(data));
}

pub fn gallery_snapshot(data: &[u8]) {
    open_gallery(None, Some(data), None);
}

pub fn gallery_config(data: &[u8]) {
    open_gallery(Some(data), None, None);
}

/// What `visage gallery import` does with a file: parse, then import into
/// an empty gallery of the export's own configuration.
pub fn gallery_export(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(export) = serde_json::from_str::<visage_gallery::GalleryExport>(text) else { return };
    let dir = scratch("import");
    let _ = fs::remove_dir_all(&dir);
    let Ok(store) = visage_gallery::EmbeddedStore::create(&dir, export.config.clone()) else { return };
    let _ = store.import(&export, visage_gallery::ImportConflict::Merge);
}

pub fn serve_keys(data: &[u8]) {
    let path = file_with("keys.json", data);
    if visage_serve::read_keys(&path).is_ok() {
        let _ = visage_serve::KeyRing::open(&path);
    }
}
