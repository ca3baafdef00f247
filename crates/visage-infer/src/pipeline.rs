//! Photos on disk → every face detected, aligned and embedded, as a pipeline:
//! decode workers read, decode and letterbox photos (the CPU-heavy,
//! model-free half) while the model thread runs the detector and the
//! recogniser on what they have prepared.
//!
//! Memory is bounded: workers hand photos over through a channel of
//! `2 × workers` slots, so at most that many decoded photos wait at once,
//! however long the input list is. Faces of consecutive photos are embedded
//! together in batches of up to `batch_faces`, since a recogniser call costs
//! less per face in a batch than alone.
//!
//! Results reach the caller's sink as each batch completes, in completion
//! order (each carries its input index); a photo that fails (unreadable,
//! no face, wrong size) is reported there and the rest go on.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use image::RgbImage;

use crate::align::{align_face, Landmarks, ALIGNED_SIZE, ARCFACE_TEMPLATE_112};
use crate::decode::DecodeOptions;
use crate::detector::{Detector, DetectorInput, DetectorPreprocessor};
use crate::error::{InferError, Result};
use crate::load_rgb;
use crate::recognizer::{FaceEmbedding, Recognizer};

/// How the pipeline runs.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// Decoder limits (largest accepted pixel count) for every photo.
    pub decode: DecodeOptions,
    /// Decode threads (0 counts as 1; never more than there are files);
    /// default: one per core, at most 4.
    pub workers: usize,
    /// Faces gathered across photos before a recogniser call (default 16):
    /// pending photos are embedded once they hold at least this many faces.
    pub batch_faces: usize,
    /// Keep each face's aligned crop in the result (for montages and reports).
    pub keep_crops: bool,
}

impl Default for PipelineOptions {
    /// One decode thread per core up to 4: decoding a phone photo takes about
    /// as long as detecting in it, so more would only queue.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { decode: DecodeOptions::default(), workers: cores.clamp(1, 4), batch_faces: 16, keep_crops: false }
    }
}

/// One face of a photo.
#[derive(Clone, Debug)]
pub struct PhotoFace {
    /// `[x1, y1, x2, y2]` in photo pixels (the whole crop for aligned input).
    pub bbox: [f32; 4],
    /// Detector confidence; `None` for aligned input (nothing was detected).
    pub det_score: Option<f32>,
    /// The 5 landmarks in photo pixels, template order (for aligned input,
    /// the template itself).
    pub landmarks: Landmarks,
    /// The recogniser's output for the aligned crop.
    pub embedding: FaceEmbedding,
    /// The 112×112 aligned crop, when [`PipelineOptions::keep_crops`].
    pub crop: Option<RgbImage>,
}

/// Every face of one photo.
#[derive(Clone, Debug)]
pub struct PhotoFaces {
    /// `(width, height)` of the decoded, upright photo.
    pub size: (u32, u32),
    /// Its faces in the detector's order (best score first; largest first
    /// under `with_max_faces`). Never empty: a photo without a face is
    /// [`InferError::NoFace`].
    pub faces: Vec<PhotoFace>,
}

impl PhotoFace {
    /// Area of the box in square photo pixels (0 for a degenerate box).
    pub fn area(&self) -> f32 {
        let [x1, y1, x2, y2] = self.bbox;
        (x2 - x1).max(0.0) * (y2 - y1).max(0.0)
    }
}

/// Index of the face with the largest box, the one a photo stands for where
/// one face per photo is used (verification, enrolment, synthesis); on a tie
/// the later face. `None` for no faces.
pub fn largest_face(faces: &[PhotoFace]) -> Option<usize> {
    (0..faces.len()).max_by(|&a, &b| faces[a].area().total_cmp(&faces[b].area()))
}

/// One input's outcome, tagged with its position in the input list.
#[derive(Debug)]
pub struct PhotoOutcome {
    /// Position of the photo in the list given to [`FacePipeline::run`].
    pub index: usize,
    /// The photo's path, as given.
    pub path: PathBuf,
    /// Its faces, or why it produced none (unreadable, no face, wrong size,
    /// the recogniser failed on its batch).
    pub result: Result<PhotoFaces>,
}

/// Seconds spent in each stage, summed over photos. Decoding runs on the
/// worker threads in parallel with the rest, so its sum can exceed the wall time.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StageTimes {
    /// Reading, decoding and preparing the detector input, on the workers.
    pub decode_s: f64,
    /// Detection, second looks included.
    pub detect_s: f64,
    /// The part of `detect_s` spent in second looks (padded retries and
    /// landmark refinement), and how many extra detector passes they took.
    pub second_looks_s: f64,
    /// Extra detector passes the second looks took.
    pub second_look_passes: u64,
    /// Aligning detected faces into crops.
    pub align_s: f64,
    /// Embedding; with flip TTA every face takes two recogniser passes.
    pub embed_s: f64,
    /// Recogniser passes per face: 2 with flip TTA, otherwise 1.
    pub recognizer_passes_per_face: u32,
    /// Wall-clock seconds of the whole run.
    pub wall_s: f64,
}

/// Detector (or none, for aligned crops) + recogniser + options.
pub struct FacePipeline {
    detector: Option<Detector>,
    recognizer: Recognizer,
    options: PipelineOptions,
}

/// What a decode worker hands to the model thread.
struct Decoded {
    index: usize,
    result: Result<(RgbImage, Option<DetectorInput>)>,
    decode_time: Duration,
}

/// A photo whose faces are aligned and wait for the recogniser.
struct Pending {
    index: usize,
    size: (u32, u32),
    faces: Vec<(Detected, RgbImage)>,
}

/// Where a face is, before it is embedded.
struct Detected {
    bbox: [f32; 4],
    det_score: Option<f32>,
    landmarks: Landmarks,
}

impl FacePipeline {
    /// `detector: None` treats every input as an already aligned crop of the
    /// recogniser's input size.
    pub fn new(detector: Option<Detector>, recognizer: Recognizer, options: PipelineOptions) -> Self {
        Self { detector, recognizer, options }
    }

    /// The recogniser it embeds with.
    pub fn recognizer(&self) -> &Recognizer {
        &self.recognizer
    }

    /// Runs every file through the pipeline, calling `sink` once per file
    /// (in completion order), and returns the time spent per stage.
    pub fn run(&mut self, files: &[PathBuf], mut sink: impl FnMut(PhotoOutcome)) -> StageTimes {
        let started = Instant::now();
        let mut times = StageTimes::default();
        let workers = self.options.workers.max(1).min(files.len().max(1));
        let preprocessor = self.detector.as_ref().map(Detector::preprocessor);
        let next_file = AtomicUsize::new(0);
        let (sender, receiver) = mpsc::sync_channel::<Decoded>(2 * workers);
        let decode_options = self.options.decode.clone();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let sender = sender.clone();
                let next_file = &next_file;
                let decode = &decode_options;
                scope.spawn(move || loop {
                    let index = next_file.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(index) else { break };
                    let started = Instant::now();
                    let result = load_rgb(path, decode).map(|image| {
                        let input = preprocessor.as_ref().map(|p: &DetectorPreprocessor| p.prepare(&image));
                        (image, input)
                    });
                    if sender.send(Decoded { index, result, decode_time: started.elapsed() }).is_err() {
                        break;
                    }
                });
            }
            drop(sender);

            let mut pending: Vec<Pending> = Vec::new();
            let mut pending_faces = 0;
            for decoded in receiver {
                times.decode_s += decoded.decode_time.as_secs_f64();
                let path = &files[decoded.index];
                match decoded.result.and_then(|(image, input)| self.locate_and_align(path, &image, input.as_ref(), &mut times)) {
                    Ok(photo) => {
                        pending_faces += photo.faces.len();
                        pending.push(Pending { index: decoded.index, ..photo });
                    }
                    Err(error) => sink(PhotoOutcome { index: decoded.index, path: path.clone(), result: Err(error) }),
                }
                if pending_faces >= self.options.batch_faces {
                    self.embed_pending(files, std::mem::take(&mut pending), &mut times, &mut sink);
                    pending_faces = 0;
                }
            }
            self.embed_pending(files, pending, &mut times, &mut sink);
        });
        times.wall_s = started.elapsed().as_secs_f64();
        times.recognizer_passes_per_face = if self.recognizer.flip_tta() { 2 } else { 1 };
        times
    }

    /// Every face of one photo that is already decoded (an upload held in
    /// memory, say): the same detect → align → embed steps as [`Self::run`],
    /// on the calling thread. `name` is what errors call the photo; a photo
    /// without a face is [`InferError::NoFace`], as in `run`.
    pub fn faces_in_image(&mut self, name: &std::path::Path, image: &RgbImage) -> Result<PhotoFaces> {
        let mut times = StageTimes::default();
        let input = self.detector.as_ref().map(|detector| detector.preprocessor().prepare(image));
        let photo = self.locate_and_align(name, image, input.as_ref(), &mut times)?;
        let crops: Vec<RgbImage> = photo.faces.iter().map(|(_, crop)| crop.clone()).collect();
        let embeddings = self.recognizer.embed(&crops).map_err(|e| with_photo(e, name))?;
        let keep_crops = self.options.keep_crops;
        let faces = photo
            .faces
            .into_iter()
            .zip(embeddings)
            .map(|((found, crop), embedding)| PhotoFace {
                bbox: found.bbox,
                det_score: found.det_score,
                landmarks: found.landmarks,
                embedding,
                crop: keep_crops.then_some(crop),
            })
            .collect();
        Ok(PhotoFaces { size: photo.size, faces })
    }

    /// Detects and aligns the faces of one decoded photo (or takes it as a
    /// crop when there is no detector).
    fn locate_and_align(
        &mut self,
        path: &std::path::Path,
        image: &RgbImage,
        input: Option<&DetectorInput>,
        times: &mut StageTimes,
    ) -> Result<Pending> {
        let size = image.dimensions();
        let (Some(detector), Some(input)) = (self.detector.as_mut(), input) else {
            let expected = self.recognizer.input_size();
            if size != expected {
                return Err(InferError::NotAligned { path: path.to_path_buf(), width: size.0, height: size.1, expected: ALIGNED_SIZE });
            }
            let template = ARCFACE_TEMPLATE_112.map(|[x, y]| [x as f32, y as f32]);
            let whole = Detected { bbox: [0.0, 0.0, size.0 as f32, size.1 as f32], det_score: None, landmarks: template };
            return Ok(Pending { index: 0, size, faces: vec![(whole, image.clone())] });
        };
        let started = Instant::now();
        let detections = detector.detect_in(image, input).map_err(|e| with_photo(e, path))?;
        times.detect_s += started.elapsed().as_secs_f64();
        let (passes, seconds) = detector.take_second_looks();
        times.second_look_passes += passes;
        times.second_looks_s += seconds;
        if detections.is_empty() {
            return Err(InferError::NoFace { path: path.to_path_buf() });
        }
        let started = Instant::now();
        let mut faces = Vec::with_capacity(detections.len());
        for detection in detections {
            let crop = align_face(image, &detection.landmarks).map_err(|e| with_photo(e.into(), path))?;
            faces.push((Detected { bbox: detection.bbox, det_score: Some(detection.score), landmarks: detection.landmarks }, crop));
        }
        times.align_s += started.elapsed().as_secs_f64();
        Ok(Pending { index: 0, size, faces })
    }

    /// Embeds the faces of the pending photos in one recogniser call and
    /// hands each photo to the sink.
    fn embed_pending(&mut self, files: &[PathBuf], pending: Vec<Pending>, times: &mut StageTimes, sink: &mut impl FnMut(PhotoOutcome)) {
        if pending.is_empty() {
            return;
        }
        let crops: Vec<RgbImage> = pending.iter().flat_map(|p| p.faces.iter().map(|(_, crop)| crop.clone())).collect();
        let started = Instant::now();
        let embedded = self.recognizer.embed(&crops);
        times.embed_s += started.elapsed().as_secs_f64();
        let mut embeddings = match embedded {
            Ok(embeddings) => embeddings.into_iter(),
            Err(error) => {
                // The model failed on the batch: every photo in it gets the message.
                let message = format!("the recogniser failed on this photo's batch: {error}");
                for photo in pending {
                    let path = files[photo.index].clone();
                    let result = Err(InferError::model(&path, message.clone()));
                    sink(PhotoOutcome { index: photo.index, path, result });
                }
                return;
            }
        };
        let keep_crops = self.options.keep_crops;
        for photo in pending {
            let faces = photo
                .faces
                .into_iter()
                .map(|(found, crop)| PhotoFace {
                    bbox: found.bbox,
                    det_score: found.det_score,
                    landmarks: found.landmarks,
                    embedding: embeddings.next().expect("one embedding per crop"),
                    crop: keep_crops.then_some(crop),
                })
                .collect();
            sink(PhotoOutcome { index: photo.index, path: files[photo.index].clone(), result: Ok(PhotoFaces { size: photo.size, faces }) });
        }
    }
}

/// Model and alignment errors name the model or nothing; say which photo it was.
fn with_photo(error: InferError, path: &std::path::Path) -> InferError {
    match error {
        InferError::Model { path: model, message } => InferError::Model { path: model, message: format!("on {}: {message}", path.display()) },
        InferError::Alignment(message) => InferError::Alignment(format!("{}: {message}", path.display())),
        other => other,
    }
}
