//! The command-line contract on hostile input: every file of the hand-made
//! corpus (`scripts/hostile/make_corpus.py`: huge declared shapes, lying length
//! fields, truncation, wrong dtypes, 20000×1 images, NaN/inf, deep nesting)
//! and every fuzz regression is fed to the command that reads its
//! kind, under a 2 GiB address-space limit and a 10 s wall-clock limit.
//!
//! Each run must end by itself with exit status 0 (a harmless input) or 2
//! (bad input) — never 1 for a file's content, never 101 (a panic), never a
//! signal (an abort, a stack overflow, the memory limit) and never a hang —
//! and a refusal must be one `visage: …` message that names the file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ADDRESS_SPACE_KIB: u64 = 2 * 1024 * 1024;
const WALL_LIMIT: Duration = Duration::from_secs(10);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where each fuzz target's failing inputs meet the binary: (target, kind of
/// this test, file extension the command expects). Targets not listed read
/// bytes no single command takes whole (an `.idx` alone, a gallery's WAL, an
/// HTTP upload); `fuzz_regressions.rs` replays those through the library.
const FUZZ_TARGET_KINDS: &[(&str, &str, &str)] = &[
    ("pickle_plain", "bin", "bin"),
    ("verification_bin", "bin", "bin"),
    ("torch_zip", "torch", "pth"),
    ("safetensors", "safetensors", "safetensors"),
    ("onnx", "onnx", "onnx"),
    ("recordio_scan", "rec", "rec"),
    ("npy", "npy", "npy"),
    ("scores_csv", "scores", "csv"),
    ("labels", "labels", "txt"),
    ("erc_csv", "erc", "csv"),
    ("heads_case", "heads", "json"),
    ("image_decode", "image", "img"),
    ("train_config", "train_toml", "toml"),
    ("detector_config", "detector_toml", "toml"),
    ("recognizer_config", "recognizer_toml", "toml"),
    ("gallery_export", "gallery_export", "json"),
    ("serve_keys", "keys", "json"),
];

/// Every input that ever failed a fuzz target (`fuzz/regressions/<target>/`),
/// copied into the corpus under its kind with the extension its command expects.
fn add_fuzz_regressions(corpus: &Path) -> usize {
    let mut added = 0;
    for (target, kind, extension) in FUZZ_TARGET_KINDS {
        let Ok(entries) = std::fs::read_dir(repo().join("fuzz/regressions").join(target)) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = format!("fuzz-{target}-{}.{extension}", path.file_name().unwrap().to_string_lossy());
            std::fs::create_dir_all(corpus.join(kind)).unwrap();
            std::fs::copy(&path, corpus.join(kind).join(name)).unwrap();
            added += 1;
        }
    }
    added
}

/// The corpus, generated afresh into a scratch folder (no opaque blobs in git).
fn corpus(scratch: &Path) -> PathBuf {
    let out = scratch.join("corpus");
    let status = Command::new("python3")
        .arg(repo().join("scripts/hostile/make_corpus.py"))
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .expect("python3 runs scripts/hostile/make_corpus.py (python3 is needed by CI anyway, for ONNX Runtime's wheel)");
    assert!(status.success(), "make_corpus.py failed: {status}");
    out
}

struct Outcome {
    code: Option<i32>,
    stderr: String,
    elapsed: Duration,
    timed_out: bool,
}

impl Outcome {
    /// What broke the contract, if anything: a hang, a signal, a panic, an
    /// exit code outside 0 and `refusals`, or a refusal that names none of `names`.
    fn problem(&self, refusals: &[i32], names: &[&str]) -> Option<String> {
        if self.timed_out {
            return Some(format!("still running after {WALL_LIMIT:?}"));
        }
        match self.code {
            None => Some("killed by a signal (abort, stack overflow or the memory limit)".to_string()),
            Some(101) => Some("panicked (exit 101)".to_string()),
            Some(0) => None,
            Some(code) if !refusals.contains(&code) => Some(format!("exit {code} (expected 0 or one of {refusals:?})")),
            Some(_) if !names.iter().any(|name| self.stderr.contains(name)) => Some(format!("refused without naming {names:?}")),
            Some(_) if self.stderr.contains("panicked") => Some("printed a panic".to_string()),
            Some(_) => None,
        }
    }
}

/// `visage ARGS…` under `ulimit -v` and a wall-clock limit (killed past it).
fn run_limited(args: &[String], stderr_file: &Path) -> Outcome {
    let stderr_sink = std::fs::File::create(stderr_file).unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_sink) // a file, not a pipe: a long message must not block the child while we poll
        .spawn()
        .expect("sh runs");
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > WALL_LIMIT {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = String::from_utf8_lossy(&std::fs::read(stderr_file).unwrap()).into_owned();
    Outcome { code: status.code(), stderr, elapsed: start.elapsed(), timed_out }
}

/// The command that reads one kind of file; `{}` is the hostile file.
fn command_for(kind: &str, file: &Path, work: &Path) -> Vec<Vec<String>> {
    let f = file.display().to_string();
    let out = |name: &str| work.join(name).display().to_string();
    let photo = common::photo("biden_1.jpg");
    let emb = work.join("support_embeddings.npy").display().to_string();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    match kind {
        "bin" => vec![s(&["eval", "verify", "--embeddings", &emb, "--bin", &f])],
        "torch" => vec![s(&["model", "import", &f, "--arch", "r18", "--out", &out("imported.safetensors")])],
        "safetensors" => vec![s(&["model", "export", &f, "--out", &out("exported.onnx")])],
        "onnx" => vec![s(&[
            "model",
            "import",
            &f,
            "--arch",
            "mbf",
            "--width-scale",
            "1",
            "--embedding-size",
            "128",
            "--out",
            &out("from-onnx.safetensors"),
        ])],
        "npy" => vec![
            s(&["cluster", "--method", "ahc", "--threshold", "0.5", "--input", &f, "--output", &out("labels.txt")]),
            s(&["eval", "magnitudes", "--input", &f, "--json"]),
        ],
        "rec" | "rec_idx" => vec![s(&["data", "info", &f])],
        "scores" => vec![s(&["eval", "roc", "--scores", &f, "--json"])],
        "labels" => vec![s(&["eval", "clusters", "--truth", &f, "--pred", &f, "--json"])],
        "erc" => vec![s(&["eval", "erc", "--pairs", &f, "--json"])],
        "heads" => vec![s(&["heads", "eval", "--input", &f])],
        "image" => vec![s(&["detect", &f, "--json"]), s(&["embed", &f, "--out", &out("e.npy"), "--index", &out("e.csv")])],
        "detector_toml" => vec![s(&["detect", "--detector", &f, &photo, "--json"])],
        "recognizer_toml" => vec![s(&["embed", &photo, "--recognizer", &f, "--out", &out("r.npy"), "--index", &out("r.csv")])],
        "train_toml" => vec![s(&["train", "--config", &f, "--stop-after", "1"])],
        "gallery_export" => vec![s(&["gallery", "import", &f, "--gallery", &out("gallery")])],
        "keys" => vec![s(&["serve", "keys", "list", "--keys", &f])],
        other => panic!("the corpus has a kind this test does not know: {other}"),
    }
}

/// Every hostile file: (kind, path). `rec_idx` cases are folders holding a
/// `.rec` and its lying `.idx`; the `.rec` is the input.
fn cases(corpus: &Path) -> Vec<(String, PathBuf)> {
    let mut cases = Vec::new();
    let mut kinds: Vec<_> = std::fs::read_dir(corpus).unwrap().map(|e| e.unwrap().path()).collect();
    kinds.sort();
    for kind_dir in kinds {
        let kind = kind_dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut entries: Vec<_> = std::fs::read_dir(&kind_dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for entry in entries {
            if kind == "rec_idx" {
                cases.push((kind.clone(), entry.join("train.rec")));
            } else {
                cases.push((kind.clone(), entry));
            }
        }
    }
    cases
}

/// 4 unit rows of 4 floats: valid embeddings for the commands that need some
/// besides the hostile file (`eval verify`).
fn write_support(work: &Path) {
    ndarray_npy::write_npy(work.join("support_embeddings.npy"), &ndarray::Array2::<f32>::eye(4)).unwrap();
    // Detector configs in the corpus name the bundled YuNet file beside them.
    std::fs::copy(repo().join("models/face_detection_yunet_2023mar.onnx"), work.join("corpus/detector_toml/face_detection_yunet_2023mar.onnx"))
        .unwrap();
}

#[test]
fn hostile_inputs_end_cleanly_with_exit_2_and_a_message_naming_the_file() {
    let scratch = common::scratch("hostile", "run");
    std::fs::create_dir_all(&scratch).unwrap();
    let corpus = corpus(&scratch);
    let from_fuzzing = add_fuzz_regressions(&corpus);
    write_support(&scratch);
    let cases = cases(&corpus);
    assert!(cases.len() >= 100, "the corpus shrank to {} files", cases.len());

    let runs: Vec<(Vec<String>, String, String)> = cases
        .iter()
        .filter(|(kind, file)| !(kind == "detector_toml" && file.extension().is_some_and(|e| e == "onnx"))) // the real model beside the configs
        .flat_map(|(kind, file)| {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            // A `.rec` refused for its lying `.idx` may name the `.idx`: the folder names the case.
            let path = if kind == "rec_idx" { file.parent().unwrap() } else { file.as_path() }.display().to_string();
            command_for(kind, file, &scratch).into_iter().map(move |args| (args, name.clone(), path.clone()))
        })
        .collect();
    // Two runs at a time: each is one short process, and CI has two cores.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((args, name, path)) = runs.get(i) else { break };
                let outcome = run_limited(args, &scratch.join(format!("stderr-{i}.txt")));
                // A config naming a model file that is not there: the environment lacks it (exit 1).
                let missing_model = name == "missing_file.toml" && outcome.stderr.contains("model file not found");
                let problem = if missing_model && outcome.code == Some(1) { None } else { outcome.problem(&[2], &[name, path]) };
                results.lock().unwrap().push((format!("visage {}", args.join(" ")), outcome, problem));
            });
        }
    });
    let results = results.into_inner().unwrap();
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for (shown, outcome, problem) in results {
        if outcome.elapsed > slowest.0 {
            slowest = (outcome.elapsed, shown.clone());
        }
        if let Some(problem) = problem {
            let stderr: String = outcome.stderr.chars().take(400).collect();
            failures.push(format!("{shown}\n    {problem}\n    stderr: {}", stderr.trim()));
        }
    }
    failures.sort();
    eprintln!(
        "{} hostile files ({from_fuzzing} from fuzz/regressions), {} runs; slowest run {:.2?}: {}",
        cases.len(),
        runs.len(),
        slowest.0,
        slowest.1
    );
    assert!(failures.is_empty(), "{} of the hostile runs broke the contract:\n{}", failures.len(), failures.join("\n"));
}

/// A gallery directory whose files were damaged behind visage's back (cut
/// short, overwritten with garbage, nested without end, claiming huge
/// lengths): every command on it ends by itself — exit 0 when what is left
/// is a valid gallery (a torn last log record is dropped), else 1 or 2 with
/// a message naming the gallery — under the same memory and time limits;
/// and what a writable open cuts off the log is kept beside it.
#[test]
fn damaged_gallery_files_end_cleanly_with_a_message_naming_the_gallery() {
    let scratch = common::scratch("hostile", "galleries");
    std::fs::create_dir_all(&scratch).unwrap();
    let pristine = scratch.join("pristine");
    let pristine_arg = pristine.display().to_string();
    common::ok(common::visage(&["gallery", "enrol", "biden", &common::photo("biden_1.jpg"), "--gallery", &pristine_arg]));
    common::ok(common::visage(&["gallery", "enrol", "obama", &common::photo("obama_1.jpg"), "--gallery", &pristine_arg]));

    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    type Damage = fn(&[u8], &[u8], &[u8]) -> Vec<u8>;
    let damages: &[(&str, Damage)] = &[
        ("empty", |_, _, _| Vec::new()),
        ("half", |bytes, _, _| bytes[..bytes.len() / 2].to_vec()),
        ("all_but_one_byte", |bytes, _, _| bytes[..bytes.len().saturating_sub(1)].to_vec()),
        ("garbage", |_, garbage, _| garbage.to_vec()),
        ("bit_flips", |bytes, _, _| bytes.iter().enumerate().map(|(i, b)| if i % 97 == 13 { b ^ 0x20 } else { *b }).collect()),
        ("length_ff", |bytes, _, _| {
            let mut out = bytes.to_vec();
            for b in out.iter_mut().skip(4).take(8) {
                *b = 0xff;
            }
            out
        }),
        ("deep_json", |_, _, deep| deep.to_vec()),
        ("doubled", |bytes, _, _| [bytes, bytes].concat()),
    ];
    let mut files: Vec<String> =
        std::fs::read_dir(&pristine).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|name| name != "lock").collect();
    files.sort();
    assert!(files.iter().any(|f| f == "wal.log") && files.iter().any(|f| f == "gallery.json"), "gallery layout changed: {files:?}");

    let mut failures = Vec::new();
    let mut runs = 0;
    for file in &files {
        let original = std::fs::read(pristine.join(file)).unwrap();
        for (damage_name, damage) in damages {
            let copy = scratch.join(format!("{file}-{damage_name}"));
            std::fs::create_dir_all(&copy).unwrap();
            for f in &files {
                std::fs::copy(pristine.join(f), copy.join(f)).unwrap();
            }
            std::fs::write(copy.join(file), damage(&original, &garbage, &deep)).unwrap();
            let gallery = copy.display().to_string();
            for args in [
                vec!["gallery".to_string(), "list".into(), "--gallery".into(), gallery.clone(), "--json".into()],
                vec!["gallery".to_string(), "search".into(), common::photo("biden_2.jpg"), "--gallery".into(), gallery.clone(), "--json".into()],
            ] {
                runs += 1;
                let outcome = run_limited(&args, &scratch.join(format!("stderr-{runs}.txt")));
                let problem = outcome.problem(&[1, 2], &[&gallery]);
                if let Some(problem) = problem {
                    let stderr: String = outcome.stderr.chars().take(300).collect();
                    failures.push(format!("visage {}\n    {problem}\n    stderr: {}", args.join(" "), stderr.trim()));
                }
            }
        }
    }
    // A log of garbage from its first byte reads as one torn tail; the next
    // writable open cuts it, but only after keeping the bytes beside it.
    let garbage_log = scratch.join("wal.log-garbage");
    common::ok(common::visage(&["gallery", "enrol", "carol", &common::photo("biden_2.jpg"), "--gallery", &garbage_log.display().to_string()]));
    let kept: Vec<_> = std::fs::read_dir(&garbage_log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("wal.log.cut-0-"))
        .collect();
    assert_eq!(kept.len(), 1, "the cut log is kept once: {kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), garbage, "the kept bytes are the damaged log, whole");
    eprintln!("{} damaged galleries, {runs} runs", files.len() * damages.len());
    assert!(failures.is_empty(), "{} runs on damaged galleries broke the contract:\n{}", failures.len(), failures.join("\n"));
}
