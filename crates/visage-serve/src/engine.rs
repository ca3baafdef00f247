//! The model workers: a bounded pool of threads, each owning its own
//! [`FacePipeline`] (its own ONNX Runtime sessions), fed by one bounded queue.
//!
//! ONNX Runtime sessions are used through `&mut` (visage-infer's models keep
//! per-call buffers), so they cannot be shared between request threads
//! without a lock. Giving each worker its own sessions lets `workers`
//! photos run at once with no lock on the hot path; each session gets
//! `cores / workers` intra-op threads so the pool as a whole does not
//! oversubscribe the machine. The queue holds at most `queue_capacity`
//! photos: when it is full the request is refused at once (503 with
//! `Retry-After`) instead of waiting without bound — under overload a
//! quick refusal lets clients back off, while an unbounded queue only grows
//! latency and memory. Photos are decoded on the worker too, so the async
//! request threads never do CPU-heavy work.
//!
//! A panic on a photo (a decoder or model bug reached by some upload) is
//! caught on the worker: that request gets a 500, the panic is counted,
//! and the worker drops its pipeline (whose buffers the panic may have
//! left half-written) and loads a fresh one. While it reloads, the pool
//! has one worker fewer and `/health` says `degraded`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use image::{imageops, RgbImage};
use tokio::sync::oneshot;
use visage_infer::{
    decode_rgb, DecodeOptions, Detector, DetectorConfig, FacePipeline, InferError, PhotoFace, PipelineOptions, Recognizer, RecognizerConfig,
};

use crate::error::{ApiError, ServeError};
use crate::metrics::Metrics;

/// Which models the workers load, and from where.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    /// The face detector (YuNet or SCRFD), as its `models/<name>.toml` describes it.
    pub detector: DetectorConfig,
    /// The folder holding the detector's ONNX file.
    pub detector_dir: PathBuf,
    /// The recogniser; its `name` is what the gallery records, and its
    /// `same_person_cosine` the verify threshold (and a new gallery's).
    pub recognizer: RecognizerConfig,
    /// The folder holding the recogniser's ONNX file.
    pub recognizer_dir: PathBuf,
    /// True: embed each face and its mirror and average the two (on even
    /// when the recogniser's config leaves it off). False keeps the
    /// config's own `flip_tta` setting rather than turning it off.
    pub flip_tta: bool,
    /// Ignore faces narrower or shorter than this (photo pixels).
    pub min_face_size: f32,
}

impl ModelSpec {
    /// The bundled YuNet + ArcFace configs in a `models/` folder.
    pub fn from_dir(models_dir: &Path, detector: &str, recognizer: &str) -> Result<Self, ServeError> {
        Ok(Self {
            detector: DetectorConfig::load(&models_dir.join(format!("{detector}.toml")))?,
            detector_dir: models_dir.to_path_buf(),
            recognizer: RecognizerConfig::load(&models_dir.join(format!("{recognizer}.toml")))?,
            recognizer_dir: models_dir.to_path_buf(),
            flip_tta: false,
            min_face_size: 0.0,
        })
    }

    /// Loads a detector and a recogniser with `intra_threads` ONNX Runtime
    /// threads each; the detector keeps at most `max_faces` (the largest).
    pub fn pipeline(&self, intra_threads: Option<usize>, max_faces: Option<usize>) -> Result<FacePipeline, InferError> {
        let detector = Detector::from_config_with_threads(&self.detector, &self.detector_dir, intra_threads)?
            .with_min_face_size(self.min_face_size)
            .with_max_faces(max_faces);
        let recognizer = Recognizer::from_config_with_threads(&self.recognizer, &self.recognizer_dir, intra_threads)?;
        let recognizer = if self.flip_tta { recognizer.with_flip_tta(true) } else { recognizer };
        Ok(FacePipeline::new(Some(detector), recognizer, PipelineOptions { workers: 1, ..PipelineOptions::default() }))
    }
}

/// A photo's faces as a worker found them.
#[derive(Debug)]
pub struct Analysed {
    /// `(width, height)` of the decoded, upright photo.
    pub size: (u32, u32),
    /// Every face, in detector order (empty when there is none).
    pub faces: Vec<PhotoFace>,
    /// A small JPEG of the largest face, when asked for.
    pub thumbnail_jpeg: Option<Vec<u8>>,
}

impl Analysed {
    /// Index of the largest face (the one enrolment and verification use).
    pub fn largest(&self) -> Option<usize> {
        visage_infer::pipeline::largest_face(&self.faces)
    }
}

struct Job {
    bytes: Vec<u8>,
    /// What messages call the upload.
    name: String,
    thumbnail: bool,
    reply: oneshot::Sender<Result<Analysed, InferError>>,
}

/// Uploads that start with these bytes make a worker panic, in builds with
/// the `fault-injection` feature (the tests' way to exercise recovery).
#[cfg(feature = "fault-injection")]
pub const PANIC_TRIGGER: &[u8] = b"visage-serve: panic on this photo";

/// A request carrying this header makes its handler panic, in builds with
/// the `fault-injection` feature.
#[cfg(feature = "fault-injection")]
pub const PANIC_HEADER: &str = "x-visage-fault-panic";

/// How the pool runs.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// Model worker threads, each with its own detector and recogniser
    /// sessions (0 is taken as 1); [`crate::ServeOptions::new`] uses one per core, at most 4.
    pub workers: usize,
    /// ONNX Runtime intra-op threads per session (`None`: cores / workers, at least 1).
    pub intra_threads: Option<usize>,
    /// Photos waiting for a worker before further requests get 503 with
    /// `Retry-After: 1` (0 is taken as 1; default 64).
    pub queue_capacity: usize,
    /// Decoding limits: photos above `max_pixels` are refused from their
    /// header, before decoding (413).
    pub decode: DecodeOptions,
    /// Longest side of enrolment thumbnails (pixels).
    pub thumbnail_px: u32,
    /// The detector keeps at most this many faces per photo (the largest):
    /// one more than the service accepts, so an over-full photo is
    /// recognised as such without embedding every face in a crowd.
    pub max_faces: Option<usize>,
}

/// The model workers and their queue: [`InferencePool::analyse`] hands a
/// photo to the next free worker. Dropping the pool shuts it down (queued
/// photos are finished first).
pub struct InferencePool {
    sender: Mutex<Option<SyncSender<Job>>>,
    /// Set at shutdown, so a worker replacing its pipeline stops retrying.
    closing: Arc<AtomicBool>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    metrics: Arc<Metrics>,
    /// The recogniser's embedding length, when the model declares it (an
    /// `[N, D]` output with a fixed D): a new gallery is created with it.
    pub embedding_size: Option<usize>,
}

impl InferencePool {
    /// Starts `options.workers` threads, each loading its own models; fails
    /// (naming the model) when any of them cannot load.
    pub fn start(spec: &ModelSpec, options: &PoolOptions, metrics: Arc<Metrics>) -> Result<Self, ServeError> {
        let workers = options.workers.max(1);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let intra_threads = options.intra_threads.unwrap_or((cores / workers).max(1));
        let (sender, receiver) = mpsc::sync_channel::<Job>(options.queue_capacity.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        metrics.queue_capacity.store(options.queue_capacity.max(1), Ordering::Relaxed);
        let mut threads = Vec::with_capacity(workers);
        let mut embedding_size = None;
        let closing = Arc::new(AtomicBool::new(false));
        metrics.workers_configured.store(workers, Ordering::Relaxed);
        for index in 0..workers {
            let (ready_sender, ready) = mpsc::channel::<Result<Option<usize>, InferError>>();
            let (spec, receiver, metrics, options, closing) = (spec.clone(), receiver.clone(), metrics.clone(), options.clone(), closing.clone());
            let thread = std::thread::Builder::new()
                .name(format!("visage-model-{index}"))
                .spawn(move || worker(index, &spec, intra_threads, ready_sender, &receiver, &metrics, &options, &closing))
                .map_err(|e| ServeError::Config(format!("cannot start a model worker thread: {e}")))?;
            threads.push(thread);
            embedding_size = ready.recv().map_err(|_| ServeError::Config("a model worker stopped while loading".into()))??;
        }
        Ok(Self { sender: Mutex::new(Some(sender)), closing, threads: Mutex::new(threads), metrics, embedding_size })
    }

    /// Queues a photo; `Err` (503) at once when the queue is full or closed.
    pub async fn analyse(&self, bytes: Vec<u8>, name: &str, thumbnail: bool) -> Result<Result<Analysed, InferError>, ApiError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { bytes, name: name.to_string(), thumbnail, reply };
        {
            let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
            let Some(sender) = sender.as_ref() else { return Err(ApiError::unavailable("the service is shutting down", 5)) };
            // Counted before the send so a worker's decrement can never run first.
            self.metrics.queue_depth.fetch_add(1, Ordering::SeqCst);
            if let Err(e) = sender.try_send(job) {
                self.metrics.queue_depth.fetch_sub(1, Ordering::SeqCst);
                return Err(match e {
                    TrySendError::Full(_) => ApiError::unavailable("busy: the inference queue is full, retry shortly", 1),
                    TrySendError::Disconnected(_) => ApiError::unavailable("the model workers have stopped", 5),
                });
            }
        }
        answer.await.map_err(|_| ApiError::internal("the model worker failed on this photo and was replaced; the photo was not analysed"))
    }

    /// Stops taking photos, lets the workers finish the queued ones, and joins them.
    pub fn shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for InferencePool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Why a worker stopped taking photos.
enum Stop {
    /// The pool is shutting down and the queue is empty.
    Closed,
    /// A photo made the pipeline panic.
    Panicked,
}

/// A worker's life: load a pipeline, take photos until the queue closes,
/// and after a panic start over with a fresh pipeline. The first load's
/// result goes to `ready` (a failure there fails the service's start);
/// a failed reload is retried every second while `/health` says degraded.
#[allow(clippy::too_many_arguments)]
fn worker(
    index: usize,
    spec: &ModelSpec,
    intra_threads: usize,
    ready: mpsc::Sender<Result<Option<usize>, InferError>>,
    receiver: &Mutex<mpsc::Receiver<Job>>,
    metrics: &Metrics,
    options: &PoolOptions,
    closing: &AtomicBool,
) {
    let mut ready = Some(ready);
    loop {
        let mut pipeline = match spec.pipeline(Some(intra_threads), options.max_faces) {
            Ok(pipeline) => pipeline,
            Err(e) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(e));
                    return;
                }
                eprintln!("visage serve: model worker {index} could not reload its models (retrying in 1 s): {e}");
                std::thread::sleep(std::time::Duration::from_secs(1));
                if closing.load(Ordering::SeqCst) {
                    return;
                }
                continue;
            }
        };
        if let Some(ready) = ready.take() {
            let _ = ready.send(Ok(pipeline.recognizer().embedding_dim()));
        }
        metrics.workers_alive.fetch_add(1, Ordering::SeqCst);
        let stop = worker_loop(&mut pipeline, receiver, metrics, options);
        metrics.workers_alive.fetch_sub(1, Ordering::SeqCst);
        // Dropping a pipeline a panic interrupted may panic again: contain that too.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(pipeline)));
        match stop {
            Stop::Closed => return,
            Stop::Panicked => {
                metrics.worker_panics.fetch_add(1, Ordering::SeqCst);
                eprintln!("visage serve: model worker {index} panicked on a photo; loading a fresh pipeline");
            }
        }
    }
}

fn worker_loop(pipeline: &mut FacePipeline, receiver: &Mutex<mpsc::Receiver<Job>>, metrics: &Metrics, options: &PoolOptions) -> Stop {
    loop {
        let job = {
            let receiver = receiver.lock().unwrap_or_else(|p| p.into_inner());
            match receiver.recv() {
                Ok(job) => job,
                Err(_) => return Stop::Closed,
            }
        };
        metrics.queue_depth.fetch_sub(1, Ordering::SeqCst);
        // The request gave up (timed out, client gone): skip the work.
        if job.reply.is_closed() {
            continue;
        }
        let started = Instant::now();
        let Ok(result) = catch_unwind(AssertUnwindSafe(|| analyse(pipeline, &job, options))) else {
            // `job.reply` is dropped unanswered: the request gets a 500.
            return Stop::Panicked;
        };
        metrics.observe_inference(started.elapsed());
        let _ = job.reply.send(result);
    }
}

fn analyse(pipeline: &mut FacePipeline, job: &Job, options: &PoolOptions) -> Result<Analysed, InferError> {
    #[cfg(feature = "fault-injection")]
    if job.bytes.starts_with(PANIC_TRIGGER) {
        panic!("fault injection: a photo that makes the worker panic");
    }
    let name = Path::new(&job.name);
    let image = decode_rgb(&job.bytes, name, &options.decode)?;
    let faces = match pipeline.faces_in_image(name, &image) {
        Ok(photo) => photo.faces,
        Err(InferError::NoFace { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut analysed = Analysed { size: image.dimensions(), faces, thumbnail_jpeg: None };
    if job.thumbnail {
        if let Some(largest) = analysed.largest() {
            analysed.thumbnail_jpeg = Some(face_thumbnail(&image, analysed.faces[largest].bbox, options.thumbnail_px));
        }
    }
    Ok(analysed)
}

/// The face's box widened by a quarter on each side (hair and chin make a
/// face recognisable to people), clipped to the photo, scaled to fit
/// `max_side` and encoded as JPEG (quality 85).
pub fn face_thumbnail(image: &RgbImage, bbox: [f32; 4], max_side: u32) -> Vec<u8> {
    let (width, height) = image.dimensions();
    let [x1, y1, x2, y2] = bbox;
    let (margin_x, margin_y) = (0.25 * (x2 - x1), 0.25 * (y2 - y1));
    let left = (x1 - margin_x).clamp(0.0, width as f32 - 1.0) as u32;
    let top = (y1 - margin_y).clamp(0.0, height as f32 - 1.0) as u32;
    let right = ((x2 + margin_x).ceil().clamp(0.0, width as f32) as u32).max(left + 1);
    let bottom = ((y2 + margin_y).ceil().clamp(0.0, height as f32) as u32).max(top + 1);
    let crop = imageops::crop_imm(image, left, top, right - left, bottom - top).to_image();
    let scale = (max_side as f32 / crop.width().max(crop.height()) as f32).min(1.0);
    let (w, h) = (((crop.width() as f32 * scale).round() as u32).max(1), ((crop.height() as f32 * scale).round() as u32).max(1));
    let small = if scale < 1.0 { imageops::resize(&crop, w, h, imageops::FilterType::Triangle) } else { crop };
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 85).encode_image(&small).expect("JPEG encoding into memory cannot fail");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnail_is_the_widened_box_scaled_to_fit() {
        // A 400×300 photo, a 100×80 face box at (100, 100): widened to
        // 150×120 at (75, 80), scaled by 64/150 → 64×51.
        let image = RgbImage::from_fn(400, 300, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 0]));
        let jpeg = face_thumbnail(&image, [100.0, 100.0, 200.0, 180.0], 64);
        let decoded = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        assert_eq!(decoded.dimensions(), (64, 51));
        // A 60×40 box over the corner: widened by 15 / 10 px to x −35..55, y −20..40,
        // clipped to 0..55 × 0..40 and kept at that size (below 64).
        let jpeg = face_thumbnail(&image, [-20.0, -10.0, 40.0, 30.0], 64);
        assert_eq!(image::load_from_memory(&jpeg).unwrap().to_rgb8().dimensions(), (55, 40));
    }
}
