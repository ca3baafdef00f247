//! `visage bench embed` and `visage bench analyze`: the inference pipeline
//! against onnxruntime-python / OpenCV on the same model, photos and thread
//! count, timed in the same run (`scripts/bench/infer.sh` installs the Python
//! side and runs both).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::Args;
use serde::Deserialize;
use visage_infer::{OnnxModel, Recognizer, RecognizerConfig, RgbImage};

use super::super::face_models::{expand_inputs, registry, RecognizerArgs, DEFAULT_RECOGNIZER};
use super::super::Failure;
use super::scripts::ReferenceScripts;

/// The folder holding the ONNX file `file`: `given`, else the first of the
/// default model folders that has it (the rule of `visage embed`).
fn models_dir_for(given: &Option<PathBuf>, file: &Path) -> Result<PathBuf, Failure> {
    registry(given.as_deref())?.model_dir(&file.to_string_lossy(), file, None).map_err(Failure::from)
}

/// `../shared/data/<rest>`: where the benchmarks' default photos are when
/// run from the repository's root (the shared data sits beside the clone).
fn shared_data(rest: &str) -> PathBuf {
    Path::new("../shared/data").join(rest)
}

/// Sorts the runs' seconds and returns their median.
fn median(runs: &mut [f64]) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// A per-run scratch folder for the files passed between the two sides,
/// removed when dropped (also when the bench stops on an error).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(what: &str) -> Result<Self, Failure> {
        let dir = std::env::temp_dir().join(format!("visage-bench-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Failure::other(format!("{}: cannot create: {e}", dir.display())))?;
        Ok(Self(dir))
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a Python script and parses each stdout line as JSON.
fn run_python<T: for<'de> Deserialize<'de>>(python: &Path, script: &Path, args: &[String]) -> Result<Vec<T>, Failure> {
    let output = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| Failure::other(format!("running {} {}: {e}", python.display(), script.display())))?;
    if !output.status.success() {
        return Err(Failure::other(format!("{} failed:\n{}", script.display(), String::from_utf8_lossy(&output.stderr))));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).map_err(|e| Failure::other(format!("{} printed `{line}`: {e}", script.display()))))
        .collect()
}

#[derive(Debug, Args)]
pub struct EmbedBenchArgs {
    /// Recogniser: a config name in models/ or a path to a recogniser config (.toml).
    #[arg(long, default_value = "arcface_mobileface_128d_paddle")]
    recognizer: String,
    /// Folder searched first for the ONNX files [default: the folders of
    /// $VISAGE_MODELS_DIR]; the bundled models come after it.
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// A folder laid out as the repository's scripts/ to run the Python side
    /// from [default: the copies compiled into this binary].
    #[arg(long)]
    scripts_dir: Option<PathBuf>,
    /// Aligned crops of the model's input size (folders searched recursively)
    /// [default: ../shared/data/reference/aligned, from the repository's root].
    #[arg(long)]
    crops: Option<PathBuf>,
    /// Batch sizes to measure (a model with a fixed batch dimension runs only its own).
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    batches: Vec<usize>,
    /// ONNX Runtime intra-op threads, the same on both sides.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Timed passes over all crops per batch size and round; the median of all rounds is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Rounds of (visage, then onnxruntime-python).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Untimed passes first, in every round.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// A Python with onnxruntime and OpenCV for the reference side
    /// (scripts/bench/infer.sh installs one); without it only visage is timed.
    #[arg(long)]
    ort_python: Option<PathBuf>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// One batch size on one side.
#[derive(Debug, Clone, Deserialize)]
struct EmbedTiming {
    batch: usize,
    #[serde(default)]
    images: usize,
    #[serde(default)]
    median_s: f64,
    #[serde(default)]
    runs_s: Vec<f64>,
    /// Why this batch size was not run (the model's batch is fixed).
    #[serde(default)]
    skipped: Option<String>,
}

impl EmbedTiming {
    fn images_per_s(&self) -> f64 {
        self.images as f64 / self.median_s
    }
}

impl EmbedBenchArgs {
    pub fn run(&self) -> Result<(), Failure> {
        if self.runs == 0 || self.rounds == 0 || self.threads == 0 || self.batches.contains(&0) {
            return Err(Failure::bad_input("--runs, --rounds, --threads and every --batches value must be ≥ 1"));
        }
        let config = RecognizerArgs::named(self.recognizer.clone()).config()?;
        let model_file = config.model_path(&models_dir_for(&self.models_dir, Path::new(&config.file))?);
        let model = OnnxModel::load_with_threads(&model_file, Some(self.threads)).map_err(Failure::from)?;
        let fixed_batch = model.inputs().first().and_then(|input| input.dims.first().copied().flatten());
        let mut recognizer = Recognizer::new(model, config.normalization(), false).map_err(Failure::from)?;

        let crops_dir = self.crops.clone().unwrap_or_else(|| shared_data("reference/aligned"));
        let files = expand_inputs(std::slice::from_ref(&crops_dir))?;
        let crops = files
            .iter()
            .map(|file| visage_infer::load_rgb(file, &Default::default()).map_err(Failure::from))
            .collect::<Result<Vec<RgbImage>, _>>()?;
        if crops.is_empty() {
            return Err(Failure::bad_input(format!("{}: no image files", crops_dir.display())));
        }

        // Batch sizes the model accepts; the others are reported as skipped.
        let skipped = |batch: usize| fixed_batch.filter(|&fixed| fixed != batch).map(|fixed| format!("the model's batch is fixed to {fixed}"));
        let mut ours: Vec<EmbedTiming> = self
            .batches
            .iter()
            .map(|&batch| EmbedTiming { batch, images: crops.len(), median_s: 0.0, runs_s: Vec::new(), skipped: skipped(batch) })
            .collect();
        let mut reference: Vec<EmbedTiming> = Vec::new();
        let mut batch1_embeddings = None;
        let mut lowest_cosine = None;
        let scratch = ScratchDir::new("embed")?;
        // Rounds alternate the two sides, so a change of load on the shared
        // machine hits both; the medians pool every round's runs.
        for round in 0..self.rounds {
            for timing in ours.iter_mut().filter(|t| t.skipped.is_none()) {
                recognizer = recognizer.with_max_batch(timing.batch);
                for run in 0..self.warmup + self.runs {
                    let start = Instant::now();
                    let embeddings = recognizer.embed(&crops).map_err(Failure::from)?;
                    let elapsed = start.elapsed().as_secs_f64();
                    if run >= self.warmup {
                        timing.runs_s.push(elapsed);
                    }
                    if timing.batch == 1 {
                        batch1_embeddings = Some(embeddings);
                    }
                }
            }
            let Some(python) = &self.ort_python else { continue };
            let emb_out = scratch.join("ort_batch1.npy");
            let timings: Vec<EmbedTiming> = run_python(
                python,
                &ReferenceScripts::new(self.scripts_dir.as_deref())?.path("bench/infer_ort.py")?,
                &self.python_args(&config, &model_file, &files, &scratch.0)?,
            )?;
            for timing in timings {
                match reference.iter_mut().find(|r| r.batch == timing.batch) {
                    Some(pooled) => pooled.runs_s.extend(timing.runs_s),
                    None => reference.push(timing),
                }
            }
            if round == 0 {
                if let (Some(ours), true) = (&batch1_embeddings, emb_out.is_file()) {
                    lowest_cosine = Some(lowest_row_cosine(ours, &emb_out)?);
                }
            }
        }
        for timing in ours.iter_mut().chain(reference.iter_mut()).filter(|t| t.skipped.is_none()) {
            timing.median_s = median(&mut timing.runs_s);
        }
        self.report(&config.name, crops.len(), &ours, &reference, lowest_cosine);
        Ok(())
    }

    /// The reference script's arguments: the same crops (in visage's order),
    /// model, normalisation, batches and threads.
    fn python_args(&self, config: &RecognizerConfig, model_file: &Path, crops: &[PathBuf], scratch: &Path) -> Result<Vec<String>, Failure> {
        let list = scratch.join("crops.txt");
        let text: String = crops.iter().map(|f| format!("{}\n", f.display())).collect();
        std::fs::write(&list, text).map_err(|e| Failure::other(format!("{}: {e}", list.display())))?;
        let norm = config.normalization();
        let triple = |v: [f32; 3]| v.map(|x| x.to_string()).join(",");
        let args = [
            ("--model", model_file.display().to_string()),
            ("--list", list.display().to_string()),
            ("--batches", self.batches.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")),
            ("--runs", self.runs.to_string()),
            ("--warmup", self.warmup.to_string()),
            ("--threads", self.threads.to_string()),
            ("--channel-order", format!("{:?}", norm.channel_order).to_lowercase()),
            ("--mean", triple(norm.mean)),
            ("--std", triple(norm.std)),
            ("--emb-out", scratch.join("ort_batch1.npy").display().to_string()),
        ];
        Ok(args.into_iter().flat_map(|(flag, value)| [flag.to_string(), value]).collect())
    }

    fn report(&self, model: &str, images: usize, ours: &[EmbedTiming], reference: &[EmbedTiming], lowest_cosine: Option<f64>) {
        let find = |batch: usize| reference.iter().find(|r| r.batch == batch && r.skipped.is_none());
        if self.json {
            for t in ours {
                let other = find(t.batch);
                println!(
                    "{}",
                    serde_json::json!({
                        "model": model, "batch": t.batch, "images": t.images, "threads": self.threads,
                        "visage_median_s": t.median_s, "visage_runs_s": t.runs_s,
                        "ort_python_median_s": other.map(|r| r.median_s), "ort_python_runs_s": other.map(|r| &r.runs_s),
                        "skipped": t.skipped, "lowest_cosine": lowest_cosine,
                    })
                );
            }
            return;
        }
        println!(
            "Embedding throughput, {model}, {images} aligned crops, {} intra-op threads each, median of {} rounds × {} runs (each round: {} warm-up, visage then onnxruntime-python)",
            self.threads, self.rounds, self.runs, self.warmup
        );
        println!("  {:>5} {:>13} {:>15} {:>19} {:>9}", "batch", "visage img/s", "[min–max]", "onnxruntime-py img/s", "ratio ×");
        for t in ours {
            if let Some(why) = &t.skipped {
                println!("  {:>5}  not run: {why}", t.batch);
                continue;
            }
            let spread = format!(
                "[{:.0}–{:.0}]",
                t.images as f64 / t.runs_s.last().copied().unwrap_or(t.median_s),
                t.images as f64 / t.runs_s.first().copied().unwrap_or(t.median_s)
            );
            match find(t.batch) {
                Some(r) => println!(
                    "  {:>5} {:>13.1} {:>15} {:>20.1} {:>9.2}",
                    t.batch,
                    t.images_per_s(),
                    spread,
                    r.images_per_s(),
                    t.images_per_s() / r.images_per_s()
                ),
                None => println!("  {:>5} {:>13.1} {:>15} {:>20} {:>9}", t.batch, t.images_per_s(), spread, "-", "-"),
            }
        }
        if let Some(cosine) = lowest_cosine {
            println!("  batch-1 embeddings, visage vs onnxruntime-python: lowest cosine {cosine:.6}");
        }
    }
}

/// The lowest row-wise cosine between visage's embeddings and the reference's `.npy`.
fn lowest_row_cosine(ours: &[visage_infer::FaceEmbedding], reference_npy: &Path) -> Result<f64, Failure> {
    let reference: ndarray::Array2<f32> =
        ndarray_npy::read_npy(reference_npy).map_err(|e| Failure::other(format!("{}: {e}", reference_npy.display())))?;
    if reference.nrows() != ours.len() {
        return Err(Failure::other(format!("{}: {} rows, visage embedded {}", reference_npy.display(), reference.nrows(), ours.len())));
    }
    Ok(ours
        .iter()
        .zip(reference.outer_iter())
        .map(|(face, row)| face.embedding.iter().zip(row.iter()).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>())
        .fold(f64::INFINITY, f64::min))
}

#[derive(Debug, Args)]
pub struct AnalyzeBenchArgs {
    /// Photo folders [default: ../shared/data/faces_small and ../shared/data/faces,
    /// from the repository's root].
    dirs: Vec<PathBuf>,
    /// Threads on both sides: RAYON_NUM_THREADS and --decode-threads for
    /// `visage analyze` (ONNX Runtime keeps its default, one intra-op thread
    /// per core); OpenCV, ONNX Runtime intra-op and BLAS threads for Python.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Timed runs per folder and side; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Untimed runs first (file cache, ONNX Runtime library).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Folder searched first for the ONNX files [default: the folders of
    /// $VISAGE_MODELS_DIR]; the bundled models come after it.
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// A folder laid out as the repository's scripts/ to run the Python side
    /// from [default: the copies compiled into this binary].
    #[arg(long)]
    scripts_dir: Option<PathBuf>,
    /// A Python with onnxruntime, OpenCV and scikit-learn (scripts/bench/infer.sh
    /// installs one) for the reference pipeline; without it only visage is timed.
    #[arg(long)]
    pipeline_python: Option<PathBuf>,
    /// Cosine-distance threshold of the Python side's agglomerative clustering
    /// [default: 1 − the default recogniser config's `same_person_cosine`, the
    /// cut `visage analyze` makes].
    #[arg(long)]
    distance_threshold: Option<f64>,
}

/// The detector file the Python pipeline loads (its default), used to find the models folder.
const PYTHON_DETECTOR: &str = "face_detection_yunet_2023mar.onnx";

/// What `scripts/bench/infer_pipeline.py` prints.
#[derive(Debug, Clone, Deserialize)]
struct PipelineSummary {
    photos: usize,
    faces: usize,
    clusters: usize,
    /// Seconds inside the script after its imports (model loading included).
    seconds: f64,
}

/// One folder: medians of the process wall time on both sides.
#[derive(Default)]
struct AnalyzeRow {
    dir: PathBuf,
    photos: usize,
    visage_s: Option<f64>,
    /// `(faces, persons)` from `visage analyze --json`.
    visage_counts: Option<(usize, usize)>,
    python_s: Option<f64>,
    /// The last run's summary; its `seconds` is the time after the imports.
    python_summary: Option<PipelineSummary>,
}

/// A copy of a prepared command (program, arguments, environment).
fn clone_command(command: &Command) -> Command {
    let mut copy = Command::new(command.get_program());
    copy.args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => copy.env(key, value),
            None => copy.env_remove(key),
        };
    }
    copy
}

/// Wall seconds of one run of a command (output captured; a failure stops the bench).
fn time_process(command: &mut Command, what: &str) -> Result<f64, Failure> {
    let start = Instant::now();
    let output = command.output().map_err(|e| Failure::other(format!("running {what}: {e}")))?;
    let elapsed = start.elapsed().as_secs_f64();
    if !output.status.success() {
        return Err(Failure::other(format!("{what} failed:\n{}", String::from_utf8_lossy(&output.stderr))));
    }
    Ok(elapsed)
}

/// `(faces, persons)` of a `visage analyze --json` file: each an array or a count.
fn analyze_counts(path: &Path) -> Option<(usize, usize)> {
    let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let count = |key: &str| match &value[key] {
        serde_json::Value::Array(items) => Some(items.len()),
        other => other.as_u64().map(|n| n as usize),
    };
    Some((count("faces")?, count("persons")?))
}

impl AnalyzeBenchArgs {
    pub fn run(&self) -> Result<(), Failure> {
        if self.runs == 0 || self.threads == 0 {
            return Err(Failure::bad_input("--runs and --threads must be ≥ 1"));
        }
        let dirs = if self.dirs.is_empty() { vec![shared_data("faces_small"), shared_data("faces")] } else { self.dirs.clone() };
        let visage = std::env::current_exe().map_err(|e| Failure::other(format!("cannot find the visage binary: {e}")))?;
        let help = Command::new(&visage).args(["analyze", "--help"]).output();
        let analyze_help = match help {
            Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
            _ => {
                eprintln!("visage bench analyze: this binary has no `visage analyze` yet: only the Python pipeline is timed");
                None
            }
        };
        let distance_threshold = match self.distance_threshold {
            Some(threshold) => threshold,
            None => {
                let config = RecognizerArgs::named(DEFAULT_RECOGNIZER).config()?;
                let cosine = config
                    .same_person_cosine
                    .ok_or_else(|| Failure::bad_input(format!("{}: no same_person_cosine; give --distance-threshold", config.name)))?;
                1.0 - f64::from(cosine)
            }
        };
        let scratch = ScratchDir::new("analyze")?;
        let scripts = ReferenceScripts::new(self.scripts_dir.as_deref())?;
        let pipeline_script = scripts.path("bench/infer_pipeline.py")?;
        let models_dir = models_dir_for(&self.models_dir, Path::new(PYTHON_DETECTOR))?;
        let mut rows = Vec::new();
        for dir in &dirs {
            if !dir.is_dir() {
                return Err(Failure::bad_input(format!("{}: not a folder of photos", dir.display())));
            }
            let photos = expand_inputs(std::slice::from_ref(dir))?.len();
            if photos == 0 {
                return Err(Failure::bad_input(format!("{}: no photos", dir.display())));
            }
            let visage_json = scratch.join("visage.json");
            let visage_command = analyze_help.as_ref().map(|help| {
                let has_flag = |flag: &str| help.split(|c: char| c.is_whitespace() || c == '=' || c == ',').any(|word| word == flag);
                let mut command = Command::new(&visage);
                command.arg("analyze").arg(dir).arg("--report").arg(scratch.join("report.html"));
                command.env("RAYON_NUM_THREADS", self.threads.to_string());
                if has_flag("--decode-threads") {
                    command.args(["--decode-threads", &self.threads.to_string()]);
                }
                if let (true, Some(models)) = (has_flag("--models-dir"), &self.models_dir) {
                    command.arg("--models-dir").arg(models);
                }
                (command, has_flag("--json"))
            });
            let summary_file = scratch.join("pipeline.json");
            let python_command = self.pipeline_python.as_ref().map(|python| {
                let mut command = Command::new(python);
                command.arg(&pipeline_script).arg(dir).arg("--out").arg(&summary_file).arg("--models-dir").arg(&models_dir);
                command.args(["--threads", &self.threads.to_string(), "--distance-threshold", &distance_threshold.to_string()]);
                command
            });
            // Runs alternate the two sides, so a change of load on the shared machine hits both.
            let (mut visage_runs, mut python_runs) = (Vec::new(), Vec::new());
            for run in 0..self.warmup + self.runs {
                if let Some((command, _)) = visage_command.as_ref() {
                    let mut command = clone_command(command);
                    let elapsed = time_process(&mut command, "visage analyze")?;
                    if run >= self.warmup {
                        visage_runs.push(elapsed);
                    }
                }
                if let Some(command) = python_command.as_ref() {
                    let elapsed = time_process(&mut clone_command(command), "the Python pipeline")?;
                    if run >= self.warmup {
                        python_runs.push(elapsed);
                    }
                }
            }
            let mut row = AnalyzeRow { dir: dir.clone(), photos, ..AnalyzeRow::default() };
            if let Some((command, has_json)) = visage_command.as_ref() {
                row.visage_s = Some(median(&mut visage_runs));
                if *has_json {
                    // One more, untimed run for the face and person counts.
                    time_process(clone_command(command).arg("--json").arg(&visage_json), "visage analyze --json")?;
                    row.visage_counts = analyze_counts(&visage_json);
                }
            }
            if python_command.is_some() {
                row.python_s = Some(median(&mut python_runs));
                let text = std::fs::read_to_string(&summary_file).map_err(|e| Failure::other(format!("{}: {e}", summary_file.display())))?;
                let summary: PipelineSummary = serde_json::from_str(&text).map_err(|e| Failure::other(format!("{}: {e}", summary_file.display())))?;
                if summary.photos != photos {
                    eprintln!("the Python pipeline decoded {} of the {photos} photos in {}", summary.photos, dir.display());
                }
                row.python_summary = Some(summary);
            }
            rows.push(row);
        }
        self.report(&rows);
        Ok(())
    }

    fn report(&self, rows: &[AnalyzeRow]) {
        println!(
            "End to end (decode → YuNet-2023mar → align → Paddle ArcFace → clustering), {} threads each, median of {} runs after {} warm-up, runs alternating",
            self.threads, self.runs, self.warmup
        );
        println!(
            "  {:<12} {:>6} {:>12} {:>12} {:>8} {:>18} {:>15} {:>15}",
            "photos", "count", "visage ph/s", "python ph/s", "ratio ×", "python in-script", "visage faces/p", "python faces/p"
        );
        let rate = |photos: usize, s: Option<f64>| s.map_or("-".to_string(), |s| format!("{:.2}", photos as f64 / s));
        for row in rows {
            let name = row.dir.file_name().map_or_else(|| row.dir.display().to_string(), |n| n.to_string_lossy().into_owned());
            let ratio = match (row.visage_s, row.python_s) {
                (Some(v), Some(p)) => format!("{:.2}", p / v),
                _ => "-".into(),
            };
            let in_script = row.python_summary.as_ref().map_or("-".into(), |s| format!("{:.2} ph/s", row.photos as f64 / s.seconds));
            let ours = row.visage_counts.map_or("-".into(), |(faces, persons)| format!("{faces}/{persons}"));
            let theirs = row.python_summary.as_ref().map_or("-".into(), |s| format!("{}/{}", s.faces, s.clusters));
            println!(
                "  {:<12} {:>6} {:>12} {:>12} {:>8} {:>18} {:>15} {:>15}",
                name,
                row.photos,
                rate(row.photos, row.visage_s),
                rate(row.photos, row.python_s),
                ratio,
                in_script,
                ours,
                theirs
            );
        }
        if rows.iter().any(|row| row.visage_s.is_none()) {
            println!("  visage analyze not timed: this binary has no `visage analyze` yet");
        }
        println!("  ratio = python process seconds / visage process seconds (both include start-up and model loading)");
    }
}
