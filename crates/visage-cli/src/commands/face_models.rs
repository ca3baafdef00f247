//! What `visage detect` and `visage embed` share: finding model configs and
//! files, expanding inputs, and the batch rule (a bad item is reported and
//! skipped; the command fails only when nothing succeeded, or on any failure
//! with `--strict`).

use std::path::{Path, PathBuf};

use clap::Args;
use visage_infer::{
    DecodeOptions, Detector, DetectorConfig, FacePipeline, ModelRegistry, PhotoFace, PhotoOutcome, PipelineOptions, Recognizer, RecognizerConfig,
};

use super::Failure;

/// The model registry every command resolves names through
/// ([`ModelRegistry::standard`]): the configs and default models compiled
/// into the binary, with `models_dir` (else `$VISAGE_MODELS_DIR`) searched
/// first for model files.
pub fn registry(models_dir: Option<&Path>) -> Result<ModelRegistry, Failure> {
    ModelRegistry::standard(models_dir).map_err(Failure::from)
}

/// A model's load error with the model named first; the exit code stays the
/// error's own (a missing file or config is bad input, a runtime failure is not).
fn about(model: &str, error: visage_infer::InferError) -> Failure {
    let mut failure = Failure::from(error);
    failure.message = format!("{model}: {}", failure.message);
    failure
}

/// Padding for a retry when a detector config turns it on without a fraction.
pub const DEFAULT_PAD_RETRY: f32 = 0.25;

/// The detector config a `--detector` choice names (a short name of
/// [`visage_infer::registry::DETECTOR_ALIASES`], a config name or a path).
pub fn detector_config(choice: &str) -> Result<DetectorConfig, Failure> {
    registry(None)?.detector_config(choice).map_err(Failure::from)
}

/// The recogniser config a `--recognizer` choice names (a config name or a path).
pub fn recognizer_config(choice: &str) -> Result<RecognizerConfig, Failure> {
    registry(None)?.recognizer_config(choice).map_err(Failure::from)
}

#[derive(Debug, Args)]
pub struct DetectorArgs {
    /// Face detector: yunet (YuNet-2023mar, bundled), scrfd (SCRFD-2.5G), a
    /// config name of `visage models list` or a path to a detector config (.toml).
    #[arg(long, default_value = "yunet")]
    pub detector: String,
    /// Folder searched first for the ONNX files the configs name [default:
    /// the folders of $VISAGE_MODELS_DIR]; the bundled models come after it.
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// Keep at most this many faces per photo (the largest).
    #[arg(long)]
    pub max_faces: Option<usize>,
    /// Ignore faces whose box is narrower or shorter than this (photo pixels).
    #[arg(long, default_value_t = 0.0)]
    pub min_face_size: f32,
    /// Refuse photos above this many pixels (checked before decoding).
    #[arg(long, default_value_t = DecodeOptions::default().max_pixels)]
    pub max_pixels: u64,
    /// Exit 2 if any input fails (default: only if all fail).
    #[arg(long)]
    pub strict: bool,
    /// Worker threads, each decoding photos and running the models on them (with more than one, each runs its own sessions of one ONNX Runtime thread) [default: cores, at most 4].
    #[arg(long, value_name = "N")]
    pub decode_threads: Option<usize>,
    /// Overrides the detector config's padded retry (`visage bench accuracy`'s chains).
    #[arg(skip)]
    pub pad_retry: Option<bool>,
    /// Overrides the detector config's landmark refinement.
    #[arg(skip)]
    pub refine_landmarks: Option<bool>,
}

/// The default recogniser: bundled in models/, ArcFace MobileFaceNet 128-d
/// with its PRelu nodes rewritten for ONNX Runtime (same embeddings, ~2x faster).
pub const DEFAULT_RECOGNIZER: &str = visage_infer::registry::DEFAULT_RECOGNIZER;

#[derive(Debug, Args)]
pub struct RecognizerArgs {
    /// Recogniser: a config name of `visage models list` or a path to a recogniser config (.toml).
    #[arg(long, default_value = DEFAULT_RECOGNIZER)]
    pub recognizer: String,
    /// Flip test-time augmentation (mean of the face's and its mirror's
    /// features) [default: the recogniser config's `flip_tta`].
    #[arg(long, conflicts_with = "no_flip_tta")]
    pub flip_tta: bool,
    /// No flip test-time augmentation, whatever the recogniser config says.
    #[arg(long)]
    pub no_flip_tta: bool,
}

/// The default chain, as `visage bench accuracy` names it: the default
/// detector and recogniser with the second looks and settings their configs
/// turn on.
pub const DEFAULT_CHAIN: &str = "yunet/arcface_mobileface_128d_paddle_fastprelu";

/// The model flags of every command that embeds faces: detector, recogniser,
/// and whether the inputs are already aligned crops.
#[derive(Debug, Args)]
pub struct FaceModelArgs {
    /// The inputs are already aligned 112×112 crops: no detection.
    #[arg(long)]
    pub aligned: bool,
    #[command(flatten)]
    pub recognizer: RecognizerArgs,
    #[command(flatten)]
    pub detector: DetectorArgs,
}

impl FaceModelArgs {
    pub fn pipeline(&self, keep_crops: bool) -> Result<FacePipeline, Failure> {
        self.detector.pipeline(&self.recognizer, self.aligned, keep_crops)
    }
}

impl RecognizerArgs {
    /// The given recogniser with the config's flip setting.
    pub fn named(recognizer: impl Into<String>) -> Self {
        Self { recognizer: recognizer.into(), flip_tta: false, no_flip_tta: false }
    }

    /// `--flip-tta` → on, `--no-flip-tta` → off, neither → the config's.
    pub fn flip_override(&self) -> Option<bool> {
        match (self.flip_tta, self.no_flip_tta) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }

    pub fn config(&self) -> Result<RecognizerConfig, Failure> {
        recognizer_config(&self.recognizer)
    }
}

impl DetectorArgs {
    /// The model registry with this command's `--models-dir`.
    pub fn registry(&self) -> Result<ModelRegistry, Failure> {
        registry(self.models_dir.as_deref())
    }

    pub fn decode_options(&self) -> DecodeOptions {
        DecodeOptions { max_pixels: self.max_pixels }
    }

    pub fn load_detector(&self) -> Result<Detector, Failure> {
        let registry = self.registry()?;
        let config = registry.detector_config(&self.detector).map_err(Failure::from)?;
        // The model a config names may be missing or unreadable: reported
        // with the detector that named it.
        let detector = registry.detector_from_config(&config).map_err(|e| about(&format!("detector `{}`", config.name), e))?;
        let mut detector = detector.with_max_faces(self.max_faces).with_min_face_size(self.min_face_size);
        if let Some(refine) = self.refine_landmarks {
            detector = detector.with_refine_landmarks(refine);
        }
        match self.pad_retry {
            Some(false) => detector = detector.with_pad_retry(0.0),
            Some(true) => {
                let fraction = config.pad_retry.filter(|&p| p > 0.0).unwrap_or(DEFAULT_PAD_RETRY);
                detector = detector.with_pad_retry(fraction);
            }
            None => {}
        }
        Ok(detector)
    }

    /// The recogniser of `config`; `flip_tta` overrides the config's setting.
    pub fn load_recognizer(&self, config: &RecognizerConfig, flip_tta: Option<bool>) -> Result<Recognizer, Failure> {
        self.registry()?.recognizer_from_config(config, flip_tta).map_err(|e| about(&format!("recogniser `{}`", config.name), e))
    }

    /// Detector (unless the inputs are `aligned` crops) + recogniser as one pipeline.
    pub fn pipeline(&self, recognizer: &RecognizerArgs, aligned: bool, keep_crops: bool) -> Result<FacePipeline, Failure> {
        let config = recognizer.config()?;
        let recognizer = self.load_recognizer(&config, recognizer.flip_override()).map_err(|mut failure| {
            // A config given as a path is named, so the message points at the file to fix.
            if recognizer.recognizer.ends_with(".toml") {
                failure.message = format!("{}: {}", recognizer.recognizer, failure.message);
            }
            failure
        })?;
        let detector = if aligned { None } else { Some(self.load_detector()?) };
        let mut options = PipelineOptions { decode: self.decode_options(), keep_crops, ..PipelineOptions::default() };
        if let Some(threads) = self.decode_threads {
            options.workers = threads.max(1);
        }
        Ok(FacePipeline::new(detector, recognizer, options))
    }

    /// The detector's config name, for reports.
    pub fn detector_name(&self) -> String {
        detector_config(&self.detector).map_or_else(|_| self.detector.clone(), |c| c.name)
    }
}

const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "bmp"];

/// Files as given; folders expanded (recursively, sorted) to their image files.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found = Vec::new();
            collect_images(input, &mut found).map_err(|e| Failure::bad_input(format!("{}: cannot list: {e}", input.display())))?;
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_images(&path, out)?;
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())) {
            out.push(path);
        }
    }
    Ok(())
}

/// Counts items; a failed item is reported on stderr and the batch goes on.
#[derive(Default)]
pub struct Tally {
    pub succeeded: usize,
    pub failed: usize,
}

impl Tally {
    pub fn fail(&mut self, item: &Path, message: impl std::fmt::Display) {
        let (item, message) = (item.display().to_string(), message.to_string());
        // visage-infer's errors already start with the file they are about.
        if message.starts_with(&item) {
            eprintln!("visage: {message}");
        } else {
            eprintln!("visage: {item}: {message}");
        }
        self.failed += 1;
    }

    /// Decodes one photo, or reports it and counts the failure (the batch goes on).
    pub fn load(&mut self, file: &Path, options: &visage_infer::DecodeOptions) -> Option<visage_infer::RgbImage> {
        match visage_infer::load_rgb(file, options) {
            Ok(image) => Some(image),
            Err(e) => {
                self.fail(file, e);
                None
            }
        }
    }

    /// Counts one pipeline outcome, reporting it when it failed.
    pub fn record(&mut self, outcome: &PhotoOutcome) {
        match &outcome.result {
            Ok(_) => self.succeeded += 1,
            Err(e) => self.fail(&outcome.path, e),
        }
    }

    /// The batch's outcome: exit 2 when nothing succeeded, or with `strict` when anything failed.
    pub fn finish(&self, strict: bool) -> Result<(), Failure> {
        if self.succeeded == 0 {
            return Err(Failure::bad_input(format!("none of the {} inputs succeeded", self.failed)));
        }
        if strict && self.failed > 0 {
            return Err(Failure::bad_input(format!("{} of {} inputs failed (--strict)", self.failed, self.failed + self.succeeded)));
        }
        Ok(())
    }
}

/// A progress bar on stderr (drawn only when stderr is a terminal).
pub fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    let style =
        indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} photos [{elapsed_precise}, ETA {eta}]").expect("valid progress template");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// The same-person threshold: the one given on the command line, else the
/// recogniser config's `same_person_cosine`.
pub fn same_person_cosine(given: Option<f32>, config: &RecognizerConfig) -> Result<f32, Failure> {
    let threshold = given.or(config.same_person_cosine).ok_or_else(|| {
        Failure::bad_input(format!("recogniser `{}` has no same_person_cosine in its config: give a threshold on the command line", config.name))
    })?;
    if !(-1.0..=1.0).contains(&threshold) {
        return Err(Failure::bad_input(format!("same-person threshold {threshold} is not a cosine similarity (−1 to 1)")));
    }
    Ok(threshold)
}

/// The face with the largest box ([`visage_infer::pipeline::largest_face`]): the one a
/// photo stands for where a command takes one face per photo (verify, gallery
/// enrol, synth).
pub fn largest_face(mut faces: Vec<PhotoFace>) -> Option<PhotoFace> {
    let index = visage_infer::pipeline::largest_face(&faces)?;
    Some(faces.swap_remove(index))
}
