//! Face detectors: a photo in, face boxes with 5 landmarks (in the alignment
//! template's order) out, in the photo's own pixels.
//!
//! Both families share the front and back: [`letterbox`] fits the photo into
//! the model's input, the family's file decodes its raw outputs into
//! input-pixel detections ([`scrfd`], [`yunet`]), then [`nms`] and the size
//! filters run and coordinates go back to the photo.

pub mod letterbox;
pub mod nms;
pub mod refine;
pub mod scrfd;
pub mod yunet;

use std::path::{Path, PathBuf};

use image::RgbImage;
use ndarray::{Array4, ArrayD};
use serde::{Deserialize, Serialize};

use crate::align::Landmarks;
use crate::checksum::verify_model_file;
use crate::error::{InferError, Result};
use crate::onnx_model::OnnxModel;
use crate::preprocess::{ChannelOrder, Normalization};
use letterbox::Letterbox;

/// Input side used when the model leaves its spatial dims dynamic.
pub const DEFAULT_INPUT_SIDE: u32 = 640;

/// One face: box `[x1, y1, x2, y2]`, detector confidence and 5 landmarks
/// (left eye, right eye, nose, left and right mouth corner as seen), all in
/// photo pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]`: top-left and bottom-right corners, photo pixels.
    pub bbox: [f32; 4],
    /// Detector confidence (SCRFD: the model's score output as is; YuNet:
    /// √(cls·obj), in [0, 1]), at or above the detector's score threshold.
    pub score: f32,
    /// The 5 landmarks, `[x, y]` in photo pixels, in the alignment template's order.
    pub landmarks: Landmarks,
}

impl Detection {
    /// Box width `x2 − x1` in pixels (negative for a degenerate box).
    pub fn width(&self) -> f32 {
        self.bbox[2] - self.bbox[0]
    }

    /// Box height `y2 − y1` in pixels (negative for a degenerate box).
    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }

    /// Box area in square pixels, 0 for a degenerate box.
    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }
}

/// The index of the largest face (box area), the one a labelled photo is about.
pub fn largest(detections: &[Detection]) -> Option<usize> {
    (0..detections.len()).max_by(|&a, &b| detections[a].area().total_cmp(&detections[b].area()))
}

/// The detector architecture: it decides how raw outputs are decoded and the
/// default normalisation, score threshold and NMS overlap. `scrfd` or
/// `yunet` in a config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorFamily {
    /// insightface SCRFD with keypoints: score/box/kps per stride, 2 anchors per cell.
    Scrfd,
    /// OpenCV YuNet: cls/obj/box/kps per stride, 1 anchor per cell.
    Yunet,
}

impl DetectorFamily {
    /// SCRFD: RGB, (x − 127.5)/128; YuNet: BGR 0–255 as is.
    pub fn default_normalization(self) -> Normalization {
        match self {
            Self::Scrfd => Normalization { channel_order: ChannelOrder::Rgb, mean: [127.5; 3], std: [128.0; 3] },
            Self::Yunet => Normalization { channel_order: ChannelOrder::Bgr, mean: [0.0; 3], std: [1.0; 3] },
        }
    }

    /// The authors' defaults: SCRFD 0.5 (insightface), YuNet 0.6 (opencv_zoo).
    pub fn default_score_threshold(self) -> f32 {
        match self {
            Self::Scrfd => 0.5,
            Self::Yunet => 0.6,
        }
    }

    /// SCRFD 0.4, YuNet 0.3.
    pub fn default_nms_iou(self) -> f32 {
        match self {
            Self::Scrfd => 0.4,
            Self::Yunet => 0.3,
        }
    }
}

/// A detector config, one TOML file per model beside the recogniser configs:
///
/// ```toml
/// name = "scrfd_2.5g_bnkps"
/// file = "scrfd_2.5g_bnkps.onnx"   # relative to the models directory
/// sha256 = "bc24…"                 # optional, checked on load
/// family = "scrfd"                 # scrfd | yunet
/// input_size = [640, 640]          # optional: [width, height] for dynamic models
/// score_threshold = 0.5            # optional: family default
/// nms_iou = 0.4                    # optional: family default
/// pad_retry = 0.25                 # optional: when nothing is found, detect again
///                                  # with this fraction of the longer side added around
/// refine_landmarks = true          # optional: in photos the first pass scaled
///                                  # down, landmarks as the median over mirrored,
///                                  # rescaled full-resolution second looks (refine.rs)
/// fit_input = true                 # optional, dynamic models: input = the photo's
///                                  # own size (≤ input_size) padded to 32
/// source = "opencv/opencv_zoo …"   # optional: where the file comes from
/// licence = "MIT"                  # optional: the file's licence
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    /// The model's name, used in messages (a sha256 mismatch names the config by it).
    pub name: String,
    /// The ONNX file, relative to the models directory.
    pub file: PathBuf,
    /// Lower-case hex sha256 of the ONNX file; checked on load when present.
    #[serde(default)]
    pub sha256: Option<String>,
    /// SCRFD or YuNet: how outputs are decoded, and the defaults below.
    pub family: DetectorFamily,
    /// `[width, height]` of the input for a model whose spatial dims are
    /// dynamic (positive multiples of 32; default 640×640); a fixed model
    /// dim wins over it. With `fit_input`, the largest input.
    #[serde(default)]
    pub input_size: Option<[u32; 2]>,
    /// Lowest score kept, in [0, 1]; default: [`DetectorFamily::default_score_threshold`].
    #[serde(default)]
    pub score_threshold: Option<f32>,
    /// NMS overlap above which the lower-scoring box is dropped, in [0, 1];
    /// default: [`DetectorFamily::default_nms_iou`].
    #[serde(default)]
    pub nms_iou: Option<f32>,
    /// Input normalisation; default: [`DetectorFamily::default_normalization`].
    #[serde(default)]
    pub normalization: Option<Normalization>,
    /// When a photo gives no face, detect again with this fraction (in
    /// [0, 2]) of its longer side added on every side; absent or 0: no retry.
    #[serde(default)]
    pub pad_retry: Option<f32>,
    /// Refine the landmarks of faces the first pass saw small in a
    /// scaled-down photo (see [`refine`]); default off.
    #[serde(default)]
    pub refine_landmarks: bool,
    /// For a model with free spatial dims: run it on the photo's own size
    /// (scaled down to fit `input_size`, never up), padded to a multiple of
    /// 32, as OpenCV runs YuNet, instead of letterboxing into `input_size`.
    #[serde(default)]
    pub fit_input: bool,
    /// Where the ONNX file comes from (`visage models list` shows it).
    #[serde(default)]
    pub source: Option<String>,
    /// The ONNX file's licence, in a few words.
    #[serde(default)]
    pub licence: Option<String>,
}

impl DetectorConfig {
    /// Reads and checks a config file. [`InferError::DetectorConfig`] when the
    /// TOML does not parse into these fields, `score_threshold` or `nms_iou`
    /// is outside [0, 1], `pad_retry` outside [0, 2], or `input_size` is not
    /// positive multiples of 32.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| InferError::io(path, e))?;
        let bad = |message: String| InferError::DetectorConfig { path: path.to_path_buf(), message };
        let config: Self = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        for (field, value) in [("score_threshold", config.score_threshold), ("nms_iou", config.nms_iou)] {
            if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err(bad(format!("{field} = {} must lie in [0, 1]", value.unwrap())));
            }
        }
        if config.pad_retry.is_some_and(|p| !(0.0..=2.0).contains(&p)) {
            return Err(bad(format!("pad_retry = {} must lie in [0, 2]", config.pad_retry.unwrap())));
        }
        if config.input_size.is_some_and(|[w, h]| w == 0 || h == 0 || w % 32 != 0 || h % 32 != 0) {
            return Err(bad(format!("input_size {:?} must be positive multiples of 32", config.input_size.unwrap())));
        }
        Ok(config)
    }

    /// `models_dir` joined with `file` (an absolute `file` is kept as it is).
    pub fn model_path(&self, models_dir: &Path) -> PathBuf {
        models_dir.join(&self.file)
    }
}

/// A loaded detector with its settings.
pub struct Detector {
    model: OnnxModel,
    family: DetectorFamily,
    normalization: Normalization,
    /// `(width, height)` of the model input.
    input_size: (u32, u32),
    score_threshold: f32,
    nms_iou: f32,
    min_face_px: f32,
    max_faces: Option<usize>,
    /// Fraction of the longer side padded around a photo without a face (0: no retry).
    pad_retry: f32,
    refine_landmarks: bool,
    /// Inputs sized to each photo (≤ `input_size`) instead of `input_size` exactly.
    fit_input: bool,
    /// Extra detector passes of second looks, and their seconds, since the last `take_second_looks`.
    second_looks: (u64, f64),
}

impl Detector {
    /// Loads the model a config names from `models_dir`, checking its sha256
    /// when the config gives one. The model must have one `[N, 3, H, W]`
    /// input, with free H and W when `fit_input` is set.
    pub fn from_config(config: &DetectorConfig, models_dir: &Path) -> Result<Self> {
        Self::from_config_with_threads(config, models_dir, None)
    }

    /// [`Self::from_config`] with ONNX Runtime's intra-op thread count set
    /// (`None`: one per physical core). A service running several detectors
    /// side by side gives each a share of the cores instead of letting every
    /// session spin a thread per core.
    pub fn from_config_with_threads(config: &DetectorConfig, models_dir: &Path, intra_threads: Option<usize>) -> Result<Self> {
        let path = config.model_path(models_dir);
        verify_model_file(&path, config.sha256.as_deref(), &config.name)?;
        let model = OnnxModel::load_with_threads(&path, intra_threads)?;
        let input = match model.inputs() {
            [input] => input.clone(),
            other => return Err(InferError::model(&path, format!("a detector has one input, this model has {}", other.len()))),
        };
        let [_, channels, height, width] = input.dims[..] else {
            return Err(InferError::model(&path, format!("input `{}` has dims {:?}, expected [1, 3, H, W]", input.name, input.dims)));
        };
        if channels.is_some_and(|c| c != 3) {
            return Err(InferError::model(&path, format!("input `{}` has {channels:?} channels, expected 3", input.name)));
        }
        if config.fit_input && (width.is_some() || height.is_some()) {
            return Err(InferError::model(&path, format!("fit_input needs free spatial dims, input `{}` is fixed at {:?}", input.name, input.dims)));
        }
        let [default_w, default_h] = config.input_size.unwrap_or([DEFAULT_INPUT_SIDE; 2]);
        let input_size = (width.map_or(default_w, |w| w as u32), height.map_or(default_h, |h| h as u32));
        let family = config.family;
        Ok(Self {
            model,
            family,
            normalization: config.normalization.unwrap_or(family.default_normalization()),
            input_size,
            score_threshold: config.score_threshold.unwrap_or(family.default_score_threshold()),
            nms_iou: config.nms_iou.unwrap_or(family.default_nms_iou()),
            min_face_px: 0.0,
            max_faces: None,
            pad_retry: config.pad_retry.unwrap_or(0.0),
            refine_landmarks: config.refine_landmarks,
            fit_input: config.fit_input,
            second_looks: (0, 0.0),
        })
    }

    /// The same detector (model file and every setting) in a new ONNX Runtime
    /// session with `intra_threads`, for another thread.
    pub fn try_clone_with_threads(&self, intra_threads: Option<usize>) -> Result<Self> {
        Ok(Self { model: self.model.reload_with_threads(intra_threads)?, second_looks: (0, 0.0), ..*self })
    }

    /// Drops faces whose box is narrower or shorter than `pixels` (photo pixels).
    pub fn with_min_face_size(mut self, pixels: f32) -> Self {
        self.min_face_px = pixels;
        self
    }

    /// Keeps at most `n` faces, the largest ones.
    pub fn with_max_faces(mut self, n: Option<usize>) -> Self {
        self.max_faces = n;
        self
    }

    /// When a photo gives no face, detect again with `fraction` of its longer side padded around (0: never).
    pub fn with_pad_retry(mut self, fraction: f32) -> Self {
        self.pad_retry = fraction;
        self
    }

    /// Landmarks as the median over mirrored, rescaled second looks (see [`refine`]).
    pub fn with_refine_landmarks(mut self, refine: bool) -> Self {
        self.refine_landmarks = refine;
        self
    }

    /// Extra detector passes the second looks took, and their seconds, since the last call.
    pub fn take_second_looks(&mut self) -> (u64, f64) {
        std::mem::take(&mut self.second_looks)
    }

    /// Whether landmark refinement is on, and the pad-retry fraction.
    pub fn second_looks(&self) -> (bool, f32) {
        (self.refine_landmarks, self.pad_retry)
    }

    /// Overrides the config's lowest kept score (detector confidence, 0–1).
    pub fn with_score_threshold(mut self, threshold: f32) -> Self {
        self.score_threshold = threshold;
        self
    }

    /// SCRFD or YuNet.
    pub fn family(&self) -> DetectorFamily {
        self.family
    }

    /// `(width, height)` the photo is letterboxed into.
    pub fn input_size(&self) -> (u32, u32) {
        self.input_size
    }

    /// The underlying ONNX model (its path and tensor specs).
    pub fn model(&self) -> &OnnxModel {
        &self.model
    }

    /// What it takes to prepare this detector's input from a photo, apart
    /// from the model (see [`crate::pipeline`]).
    pub fn preprocessor(&self) -> DetectorPreprocessor {
        DetectorPreprocessor { normalization: self.normalization, input_size: self.input_size, fit: self.fit_input }
    }

    /// Faces in `image`, best score first (largest first when `max_faces` cut).
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>> {
        let input = self.preprocessor().prepare(image);
        self.detect_in(image, &input)
    }

    /// Faces in `image`, whose detector input is `input`: one pass, then the
    /// second looks the config asks for (a padded retry when nothing was
    /// found, landmark refinement; see [`refine`]).
    pub fn detect_in(&mut self, image: &RgbImage, input: &DetectorInput) -> Result<Vec<Detection>> {
        let mut faces = self.detect_prepared(input)?;
        if faces.is_empty() && self.pad_retry > 0.0 {
            let started = std::time::Instant::now();
            // Pad at the resolution the detector will see, not the photo's:
            // a padded 10⁸-pixel photo would be another 2.25·10⁸ pixels.
            let (w, h) = image.dimensions();
            let side = f64::from(w.max(h)) * (1.0 + 2.0 * f64::from(self.pad_retry));
            let limit = f64::from(self.input_size.0.max(self.input_size.1));
            let shrink = (limit / side).min(1.0);
            let small;
            let source = if shrink < 1.0 {
                let (sw, sh) = (((f64::from(w) * shrink).round() as u32).max(1), ((f64::from(h) * shrink).round() as u32).max(1));
                small = letterbox::resize_bilinear(image, sw, sh);
                &small
            } else {
                image
            };
            let (canvas, offset) = refine::padded(source, self.pad_retry);
            let input = self.preprocessor().prepare(&canvas);
            let scale = (f64::from(source.width()) / f64::from(w)) as f32;
            // The size floor is in the original photo's pixels.
            let found = self.detect_with_floor(&input, self.min_face_px * scale)?;
            faces = refine::unpad(found, offset)
                .into_iter()
                .map(|d| Detection { bbox: d.bbox.map(|v| v / scale), score: d.score, landmarks: d.landmarks.map(|[x, y]| [x / scale, y / scale]) })
                .collect();
            self.second_looks.0 += 1;
            self.second_looks.1 += started.elapsed().as_secs_f64();
        }
        // Refinement re-reads faces at the photo's full resolution: worth a
        // pass only when the first pass saw the photo scaled down.
        if self.refine_landmarks && !faces.is_empty() && input.scale < 1.0 {
            self.refine(image, &mut faces, input.scale)?;
        }
        Ok(faces)
    }

    /// Replaces the landmarks of each face the first pass saw small (at
    /// `scale` detector pixels per photo pixel) by the median of its
    /// first-pass landmarks and those found in its refinement cells.
    fn refine(&mut self, image: &RgbImage, faces: &mut [Detection], scale: f32) -> Result<()> {
        let started = std::time::Instant::now();
        let small: Vec<usize> = (0..faces.len()).filter(|&i| faces[i].width().max(faces[i].height()) * scale < refine::REFINE_BELOW).collect();
        if small.is_empty() {
            return Ok(());
        }
        let chosen: Vec<Detection> = small.iter().map(|&i| faces[i].clone()).collect();
        let Some(plan) = refine::Refinement::plan(&chosen, self.input_size, self.fit_input) else { return Ok(()) };
        self.second_looks.0 += plan.canvases() as u64;
        let mut estimates: Vec<Vec<Landmarks>> = chosen.iter().map(|f| vec![f.landmarks]).collect();
        for index in 0..plan.canvases() {
            let canvas = plan.canvas(index, image);
            let (width, height) = canvas.dimensions();
            let mut tensor = Array4::<f32>::zeros((1, 3, height as usize, width as usize));
            self.normalization.write_chw(&canvas, tensor.index_axis_mut(ndarray::Axis(0), 0), false);
            let outputs = self.model.run_f32(tensor.view().into_dyn())?;
            let found = nms::nms(self.decode(&outputs, (width, height))?, self.nms_iou);
            plan.collect(index, &found, &mut estimates);
        }
        for (&i, sets) in small.iter().zip(&estimates) {
            if let Some(median) = refine::median_landmarks(sets) {
                faces[i].landmarks = median;
            }
        }
        self.second_looks.1 += started.elapsed().as_secs_f64();
        Ok(())
    }

    /// Faces in the photo `input` was prepared from (by this detector's
    /// [`DetectorPreprocessor`]), in photo pixels.
    pub fn detect_prepared(&mut self, input: &DetectorInput) -> Result<Vec<Detection>> {
        self.detect_with_floor(input, self.min_face_px)
    }

    /// [`Self::detect_prepared`] keeping faces at least `min_face_px` wide and
    /// high in the prepared photo's pixels.
    fn detect_with_floor(&mut self, input: &DetectorInput, min_face_px: f32) -> Result<Vec<Detection>> {
        let expected = self.input_size;
        let fits = if self.fit_input {
            input.input_size.0 <= expected.0.div_ceil(32) * 32 && input.input_size.1 <= expected.1.div_ceil(32) * 32
        } else {
            input.input_size == expected
        };
        if !fits {
            return Err(InferError::model(
                self.model.path(),
                format!("input prepared for {:?}, the detector takes {:?}", input.input_size, expected),
            ));
        }
        let outputs = self.model.run_f32(input.tensor.view().into_dyn())?;
        let raw = self.decode(&outputs, input.input_size)?;
        let to_photo = |x: f32, y: f32| [x / input.scale, y / input.scale];
        let mut faces: Vec<Detection> = nms::nms(raw, self.nms_iou)
            .into_iter()
            .map(|d| Detection {
                bbox: {
                    let [x1, y1] = to_photo(d.bbox[0], d.bbox[1]);
                    let [x2, y2] = to_photo(d.bbox[2], d.bbox[3]);
                    [x1, y1, x2, y2]
                },
                score: d.score,
                landmarks: d.landmarks.map(|[x, y]| to_photo(x, y)),
            })
            .filter(|d| d.width() >= min_face_px && d.height() >= min_face_px)
            .collect();
        if let Some(n) = self.max_faces {
            if faces.len() > n {
                faces.sort_by(|a, b| b.area().total_cmp(&a.area()));
                faces.truncate(n);
            }
        }
        Ok(faces)
    }

    /// Raw detections of one run on a `(width, height)` input, in input pixels.
    fn decode(&self, outputs: &[ArrayD<f32>], (width, height): (u32, u32)) -> Result<Vec<Detection>> {
        let decoded = match self.family {
            DetectorFamily::Scrfd => scrfd::decode(outputs, width, height, self.score_threshold),
            DetectorFamily::Yunet => yunet::decode(outputs, width, height, self.score_threshold),
        };
        decoded.map_err(|message| InferError::model(self.model.path(), message))
    }
}

/// The photo-side half of detection: letterbox and normalise. It holds no
/// model, so any thread can run it.
#[derive(Clone, Copy, Debug)]
pub struct DetectorPreprocessor {
    normalization: Normalization,
    input_size: (u32, u32),
    fit: bool,
}

/// A photo letterboxed and normalised into a detector's input tensor.
pub struct DetectorInput {
    tensor: Array4<f32>,
    /// Detector-input pixels per photo pixel.
    scale: f32,
    input_size: (u32, u32),
}

impl DetectorPreprocessor {
    /// Letterboxes `image` into the detector's input size (or, for a
    /// `fit_input` detector, its own size padded to multiples of 32) and
    /// normalises it into a [1, 3, H, W] tensor.
    pub fn prepare(&self, image: &RgbImage) -> DetectorInput {
        let (width, height) = self.input_size;
        let letterbox = if self.fit { Letterbox::fitted(image, width, height) } else { Letterbox::new(image, width, height) };
        let (width, height) = letterbox.canvas.dimensions();
        let mut tensor = Array4::<f32>::zeros((1, 3, height as usize, width as usize));
        self.normalization.write_chw(&letterbox.canvas, tensor.index_axis_mut(ndarray::Axis(0), 0), false);
        DetectorInput { tensor, scale: letterbox.scale, input_size: (width, height) }
    }
}

/// The detector-output tensors of one stride, as `[rows, columns]` matrices.
pub(crate) struct StrideOutputs<'a> {
    pub stride: u32,
    pub tensors: Vec<ndarray::ArrayView2<'a, f32>>,
}

/// Views every output as `[N, D]` (leading batch dims of 1 dropped).
pub(crate) fn as_matrices(outputs: &[ArrayD<f32>]) -> std::result::Result<Vec<ndarray::ArrayView2<'_, f32>>, String> {
    outputs
        .iter()
        .map(|o| {
            let shape = o.shape();
            let d = *shape.last().ok_or("a scalar output")?;
            if shape[..shape.len() - 1].iter().rev().skip(1).any(|&s| s != 1) {
                return Err(format!("output shape {shape:?}: expected [N, D] or [1, N, D]"));
            }
            let n = o.len().checked_div(d).unwrap_or(0);
            o.view().into_shape_with_order((n, d)).map_err(|e| format!("output shape {shape:?}: {e}"))
        })
        .collect()
}

/// Groups outputs per stride: `kinds` lists the column counts of one
/// stride's tensors in model order (SCRFD `[1, 4, 10]`: score, box, kps).
/// Tensors of one kind are ordered by row count, most rows = finest stride,
/// so grouping needs neither output names nor their order between kinds.
pub(crate) fn group_by_stride<'a>(
    matrices: Vec<ndarray::ArrayView2<'a, f32>>,
    kinds: &[usize],
    strides: &[u32],
) -> std::result::Result<Vec<StrideOutputs<'a>>, String> {
    let mut groups: Vec<StrideOutputs<'a>> = strides.iter().map(|&stride| StrideOutputs { stride, tensors: Vec::new() }).collect();
    // Same column count may serve two kinds (YuNet cls and obj): model order decides between them.
    let mut pools: Vec<(usize, Vec<ndarray::ArrayView2<'a, f32>>)> = Vec::new();
    for m in matrices {
        match pools.iter_mut().find(|(d, _)| *d == m.ncols()) {
            Some((_, pool)) => pool.push(m),
            None => pools.push((m.ncols(), vec![m])),
        }
    }
    for &d in kinds {
        let pool = &mut pools.iter_mut().find(|(cols, _)| *cols == d).ok_or(format!("no output with {d} columns"))?.1;
        if pool.len() < strides.len() {
            return Err(format!("expected {} outputs with {d} columns, found {}", strides.len(), pool.len()));
        }
        let mut these: Vec<_> = pool.drain(..strides.len()).collect();
        these.sort_by_key(|m| std::cmp::Reverse(m.nrows()));
        for (group, m) in groups.iter_mut().zip(these) {
            group.tensors.push(m);
        }
    }
    Ok(groups)
}
