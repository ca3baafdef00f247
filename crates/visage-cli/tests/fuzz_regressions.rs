//! Replays every committed fuzz input — the minimised corpora
//! (`fuzz/corpus/<target>/`) and every input that ever made a reader fail
//! (`fuzz/regressions/<target>/`) — through the same harness the fuzzer
//! runs (fuzz/harness), under plain `cargo test`: CI needs no fuzzer, and a
//! reader that starts panicking or hanging again on a known input fails
//! here, naming the file.

#[path = "../../../fuzz/harness/mod.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The fuzzer's per-input limit is 10 s on an optimised build; this test
/// runs the debug build of the libraries, so it allows three times that
/// before calling an input a hang.
const PER_INPUT_LIMIT: Duration = Duration::from_secs(30);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted; empty when the folder is absent.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.expect("readable folder entry").path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Runs one input on its own thread: a panic becomes an error carrying its
/// message, an input still running after [`PER_INPUT_LIMIT`] an error too
/// (its thread is left behind; the test fails anyway).
fn run_one(run: fn(&[u8]), path: &Path) -> Result<Duration, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("unreadable: {e}"))?;
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name(path.file_name().unwrap_or_default().to_string_lossy().into_owned())
        .spawn(move || {
            let started = Instant::now();
            let outcome = std::panic::catch_unwind(|| run(&bytes)).map(|()| started.elapsed()).map_err(|payload| {
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic without a message".into())
            });
            harness::clear_scratch();
            let _ = sender.send(outcome);
        })
        .expect("spawn a replay thread");
    match receiver.recv_timeout(PER_INPUT_LIMIT) {
        Ok(Ok(elapsed)) => Ok(elapsed),
        Ok(Err(message)) => Err(format!("panicked: {message}")),
        Err(_) => Err(format!("still running after {} s", PER_INPUT_LIMIT.as_secs())),
    }
}

/// Replays the corpus and the regressions of `target`; fails listing every
/// input that panicked or hung. A target without a committed corpus fails
/// too: its replay would otherwise pass without having run anything.
fn replay(target: &str) {
    let run = harness::target(target).unwrap_or_else(|| panic!("no harness target `{target}`")).run;
    let corpus = inputs("corpus", target);
    assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ holds no input: run scripts/fuzz/run.sh (or seed.sh) and commit its corpus");
    let regressions = inputs("regressions", target);
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, PathBuf::new());
    for path in corpus.iter().chain(&regressions) {
        match run_one(run, path) {
            Ok(elapsed) if elapsed > slowest.0 => slowest = (elapsed, path.clone()),
            Ok(_) => {}
            Err(problem) => failures.push(format!("{}: {problem}", path.display())),
        }
    }
    eprintln!(
        "{target}: {} corpus + {} regression inputs, slowest {:.2} s ({})",
        corpus.len(),
        regressions.len(),
        slowest.0.as_secs_f64(),
        slowest.1.display()
    );
    assert!(failures.is_empty(), "{target}: {} of {} inputs failed:\n{}", failures.len(), corpus.len() + regressions.len(), failures.join("\n"));
}

macro_rules! replay_tests {
    ($($target:ident),* $(,)?) => {
        $(
            #[test]
            fn $target() {
                replay(stringify!($target));
            }
        )*

        /// Every harness target has a replay test above, and every folder
        /// of inputs belongs to a target: a new target or a renamed folder
        /// cannot silently drop out of the replay.
        #[test]
        fn every_target_and_folder_is_replayed() {
            let tested = [$(stringify!($target)),*];
            for target in harness::TARGETS {
                assert!(tested.contains(&target.name), "harness target `{}` has no replay test in this file", target.name);
            }
            for kind in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind)) else {
                    assert_eq!(kind, "regressions", "fuzz/corpus/ is missing");
                    continue;
                };
                for entry in entries {
                    let name = entry.expect("readable folder entry").file_name().to_string_lossy().into_owned();
                    assert!(tested.contains(&name.as_str()), "fuzz/{kind}/{name}/ names no harness target");
                }
            }
        }
    };
}

replay_tests!(
    image_decode,
    pickle_plain,
    pickle_torch,
    verification_bin,
    torch_zip,
    safetensors,
    onnx,
    recordio_scan,
    recordio_idx,
    npy,
    embeddings_csv,
    scores_csv,
    pairs,
    labels,
    erc_csv,
    ijb_meta,
    heads_case,
    train_config,
    detector_config,
    recognizer_config,
    gallery_wal,
    gallery_snapshot,
    gallery_config,
    gallery_export,
    serve_keys,
    serve_upload,
);
