//! Photos on disk → every face detected, aligned and embedded, on worker
//! threads that each take the next photo and carry it through the whole
//! chain (read, decode, detect, align, embed) with their own ONNX Runtime
//! sessions of one intra-op thread each.
//!
//! Why whole-photo workers rather than decode threads feeding one model
//! thread: on 2 cores the model thread was the critical path, and the
//! sessions' second intra-op thread cost ~40 % more CPU per recogniser call
//! (11.8 against 8.4 ms per face, ONNX Runtime 1.31, Paddle ArcFace
//! MobileFaceNet) and ~25 % per YuNet pass for cores the decoders needed.
//! One face per recogniser call is also the cheapest per face for this graph:
//! 8.4 ms alone against 11.6 ms in batches of 16 (its activations stay in the
//! core's cache), and ONNX Runtime gives bit-identical features at every batch
//! size and thread count, so nothing is gained by gathering faces across photos.
//!
//! Memory is bounded: each worker holds one photo at a time, and finished
//! photos wait in a channel of `2 × workers` slots. Results reach the caller's
//! sink in completion order (each carries its input index); a photo that fails
//! (unreadable, no face, wrong size) is reported there and the rest go on.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, RwLock};
use std::time::Instant;

use image::RgbImage;

use crate::align::{align_face, Landmarks, ALIGNED_SIZE, ARCFACE_TEMPLATE_112};
use crate::decode::DecodeOptions;
use crate::detector::{Detector, DetectorInput};
use crate::error::{InferError, Result};
use crate::load_rgb;
use crate::recognizer::{FaceEmbedding, Recognizer};

/// How the pipeline runs.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// Decoder limits (largest accepted pixel count) for every photo.
    pub decode: DecodeOptions,
    /// Worker threads, each carrying photos through the whole chain (0 counts
    /// as 1; never more than there are files); default: one per core, at most 4.
    /// With more than one, every worker runs its own sessions of the models
    /// (one intra-op thread each); one worker runs the sessions it was given.
    pub workers: usize,
    /// Most faces per recogniser call (0 counts as 1; default 1, the cheapest
    /// per face on CPU, see the module docs); a photo's faces are embedded
    /// as soon as they are aligned.
    pub batch_faces: usize,
    /// Keep each face's aligned crop in the result (for montages and reports).
    pub keep_crops: bool,
}

impl Default for PipelineOptions {
    /// One worker per core up to 4, one face per recogniser call.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { decode: DecodeOptions::default(), workers: cores.clamp(1, 4), batch_faces: 1, keep_crops: false }
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

/// Seconds spent in each stage, summed over photos. Workers run in parallel,
/// so a stage's sum can exceed the wall time.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StageTimes {
    /// Reading, decoding and preparing the detector input.
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

/// The models one worker runs: the pipeline's own, or a copy in new sessions.
struct Models<'a> {
    detector: Option<&'a mut Detector>,
    recognizer: &'a mut Recognizer,
}

/// One photo's outcome and the seconds its stages took, from a worker.
struct Finished {
    outcome: PhotoOutcome,
    times: StageTimes,
}

/// A photo whose faces are aligned and wait for the recogniser.
struct Pending {
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
        let next_file = AtomicUsize::new(0);
        let (sender, receiver) = mpsc::sync_channel::<Finished>(2 * workers);
        let options = &self.options;
        // The pipeline's own sessions: the one worker's, or the fallback of a
        // worker whose own sessions could not be made.
        let given = RwLock::new(Models { detector: self.detector.as_mut(), recognizer: &mut self.recognizer });
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let sender = sender.clone();
                let (next_file, given) = (&next_file, &given);
                scope.spawn(move || {
                    let mut own = if workers > 1 { given.read().ok().and_then(|models| models.one_thread_copy()) } else { None };
                    loop {
                        let index = next_file.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(index) else { break };
                        let mut times = StageTimes::default();
                        let result = match own.as_mut() {
                            Some((detector, recognizer)) => {
                                let mut models = Models { detector: detector.as_mut(), recognizer };
                                models.photo(path, options, &mut times)
                            }
                            None => match given.write() {
                                Ok(mut models) => models.photo(path, options, &mut times),
                                Err(_) => Err(InferError::model(path, "another worker panicked")),
                            },
                        };
                        let outcome = PhotoOutcome { index, path: path.clone(), result };
                        if sender.send(Finished { outcome, times }).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(sender);
            for finished in receiver {
                times.add(&finished.times);
                sink(finished.outcome);
            }
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
        let mut models = Models { detector: self.detector.as_mut(), recognizer: &mut self.recognizer };
        let input = models.detector.as_ref().map(|detector| detector.preprocessor().prepare(image));
        let photo = models.locate_and_align(name, image, input.as_ref(), &mut times)?;
        models.embed(name, photo, &self.options, &mut times)
    }
}

impl StageTimes {
    /// Adds another photo's (or worker's) seconds and passes.
    fn add(&mut self, other: &StageTimes) {
        self.decode_s += other.decode_s;
        self.detect_s += other.detect_s;
        self.second_looks_s += other.second_looks_s;
        self.second_look_passes += other.second_look_passes;
        self.align_s += other.align_s;
        self.embed_s += other.embed_s;
    }
}

impl Models<'_> {
    /// The same models in new sessions of one intra-op thread, for a worker
    /// that shares the cores with others; `None` when a session cannot be
    /// made (the worker then runs the given models, one worker at a time).
    fn one_thread_copy(&self) -> Option<(Option<Detector>, Recognizer)> {
        let detector = match self.detector.as_deref() {
            Some(detector) => Some(detector.try_clone_with_threads(Some(1)).ok()?),
            None => None,
        };
        Some((detector, self.recognizer.try_clone_with_threads(Some(1)).ok()?))
    }

    /// One photo from its file: read, decode, detect, align, embed.
    fn photo(&mut self, path: &std::path::Path, options: &PipelineOptions, times: &mut StageTimes) -> Result<PhotoFaces> {
        let started = Instant::now();
        let decoded = load_rgb(path, &options.decode).map(|image| {
            let input = self.detector.as_ref().map(|detector| detector.preprocessor().prepare(&image));
            (image, input)
        });
        times.decode_s += started.elapsed().as_secs_f64();
        let (image, input) = decoded?;
        let photo = self.locate_and_align(path, &image, input.as_ref(), times)?;
        self.embed(path, photo, options, times)
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
        let (Some(detector), Some(input)) = (self.detector.as_deref_mut(), input) else {
            let expected = self.recognizer.input_size();
            if size != expected {
                return Err(InferError::NotAligned { path: path.to_path_buf(), width: size.0, height: size.1, expected: ALIGNED_SIZE });
            }
            let template = ARCFACE_TEMPLATE_112.map(|[x, y]| [x as f32, y as f32]);
            let whole = Detected { bbox: [0.0, 0.0, size.0 as f32, size.1 as f32], det_score: None, landmarks: template };
            return Ok(Pending { size, faces: vec![(whole, image.clone())] });
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
        Ok(Pending { size, faces })
    }

    /// Embeds a photo's aligned faces, `batch_faces` per recogniser call.
    fn embed(&mut self, path: &std::path::Path, photo: Pending, options: &PipelineOptions, times: &mut StageTimes) -> Result<PhotoFaces> {
        let crops: Vec<RgbImage> = photo.faces.iter().map(|(_, crop)| crop.clone()).collect();
        let started = Instant::now();
        let mut embeddings = Vec::with_capacity(crops.len());
        for group in crops.chunks(options.batch_faces.max(1)) {
            embeddings.extend(self.recognizer.embed(group).map_err(|e| with_photo(e, path))?);
        }
        times.embed_s += started.elapsed().as_secs_f64();
        let faces = photo
            .faces
            .into_iter()
            .zip(embeddings)
            .map(|((found, crop), embedding)| PhotoFace {
                bbox: found.bbox,
                det_score: found.det_score,
                landmarks: found.landmarks,
                embedding,
                crop: options.keep_crops.then_some(crop),
            })
            .collect();
        Ok(PhotoFaces { size: photo.size, faces })
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
