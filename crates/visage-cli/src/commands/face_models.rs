//! What `visage detect` and `visage embed` share: finding model configs and
//! files, expanding inputs, and the batch rule (a bad item is reported and
//! skipped; the command fails only when nothing succeeded, or on any failure
//! with `--strict`).

use std::path::{Path, PathBuf};

use clap::Args;
use visage_infer::{DecodeOptions, Detector, DetectorConfig, Recognizer, RecognizerConfig};

use super::Failure;

/// The repository's `models/` folder: the bundled detector and recogniser configs.
pub fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// Where the ONNX files are when `--models-dir` is not given:
/// `$VISAGE_MODELS_DIR`, else `shared/data/models` beside the repository.
pub fn default_models_dir() -> PathBuf {
    std::env::var_os("VISAGE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/models"))
}

/// Short detector names for `--detector`.
fn detector_config_path(choice: &str) -> PathBuf {
    match choice {
        "scrfd" => configs_dir().join("scrfd_2.5g_bnkps.toml"),
        "yunet" => configs_dir().join("face_detection_yunet_2023mar.toml"),
        other => config_path(other),
    }
}

/// `NAME` → `models/NAME.toml`; anything ending in `.toml` is a path.
fn config_path(choice: &str) -> PathBuf {
    if choice.ends_with(".toml") {
        PathBuf::from(choice)
    } else {
        configs_dir().join(format!("{choice}.toml"))
    }
}

#[derive(Debug, Args)]
pub struct DetectorArgs {
    /// Face detector: scrfd (SCRFD-2.5G), yunet (YuNet-2023mar), a config name
    /// in models/ or a path to a detector config (.toml).
    #[arg(long, default_value = "yunet")]
    pub detector: String,
    /// Folder with the ONNX files the configs name [default: $VISAGE_MODELS_DIR,
    /// else shared/data/models beside the repository].
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
}

impl DetectorArgs {
    pub fn models_dir(&self) -> PathBuf {
        self.models_dir.clone().unwrap_or_else(default_models_dir)
    }

    pub fn decode_options(&self) -> DecodeOptions {
        DecodeOptions { max_pixels: self.max_pixels }
    }

    pub fn load_detector(&self) -> Result<Detector, Failure> {
        let config = DetectorConfig::load(&detector_config_path(&self.detector)).map_err(|e| Failure::bad_input(e.to_string()))?;
        let detector = Detector::from_config(&config, &self.models_dir()).map_err(|e| Failure::other(e.to_string()))?;
        Ok(detector.with_max_faces(self.max_faces).with_min_face_size(self.min_face_size))
    }

    pub fn load_recognizer(&self, choice: &str) -> Result<Recognizer, Failure> {
        let config = RecognizerConfig::load(&config_path(choice)).map_err(|e| Failure::bad_input(e.to_string()))?;
        Recognizer::from_config(&config, &self.models_dir()).map_err(|e| Failure::other(e.to_string()))
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
