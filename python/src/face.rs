//! `FaceAnalysis` (detector + recogniser, loaded once) and `Face` (one
//! detected face: box, landmarks, score, embedding, quality).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3};
use pyo3::prelude::*;
use visage_infer::registry::{DEFAULT_DETECTOR, DEFAULT_RECOGNIZER};
use visage_infer::{FacePipeline, InferError, ModelRegistry, PhotoFace, PipelineOptions, RecognizerConfig, RgbImage};

use crate::convert::Photo;
use crate::guarded;

/// Detects, aligns and embeds faces, as `visage analyze`, `visage embed`
/// and `visage gallery` do: the same registry, models and settings, so the
/// same photo gives the same faces and embeddings.
///
/// Args:
///     detector: ``"yunet"`` (default, YuNet-2023mar), ``"scrfd"``, a config
///         name of ``visage models list`` or a path to a detector ``.toml``.
///     recognizer: a recogniser config name (default
///         ``"arcface_mobileface_128d_paddle_fastprelu"``) or a ``.toml`` path.
///     models_dir: a folder searched first for model files (default:
///         ``$VISAGE_MODELS_DIR``, then the models bundled in the package).
///
/// Raises:
///     visage.Error: an unknown model name, a model file that is missing or
///         fails its hash check, or an ONNX Runtime that cannot be loaded.
///
/// One instance may be shared by threads: calls to :meth:`get` decode their
/// photos in parallel and take turns on the models, with the GIL released.
#[pyclass(module = "visage", frozen)]
pub struct FaceAnalysis {
    pipeline: Mutex<FacePipeline>,
    detector: String,
    config: RecognizerConfig,
}

impl FaceAnalysis {
    /// Every face of one photo in the pipeline's order (no face: empty);
    /// call without the GIL.
    pub(crate) fn faces(&self, photo: Photo) -> Result<Vec<PhotoFace>, String> {
        let (name, image) = photo.decode().map_err(|e| e.to_string())?;
        self.faces_in(&name, &image)
    }

    /// Every face of decoded pixels; a photo without a face has none.
    pub(crate) fn faces_in(&self, name: &Path, image: &RgbImage) -> Result<Vec<PhotoFace>, String> {
        match self.lock().faces_in_image(name, image) {
            Ok(photo) => Ok(photo.faces),
            Err(InferError::NoFace { .. }) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The recogniser's config (its name and thresholds key a gallery).
    pub(crate) fn recognizer_config(&self) -> &RecognizerConfig {
        &self.config
    }

    /// The pipeline, even after a panic on another thread poisoned the lock:
    /// a panic leaves no half-updated state in it (inputs are per call).
    fn lock(&self) -> MutexGuard<'_, FacePipeline> {
        self.pipeline.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `FaceAnalysis()`: the default detector and recogniser.
    pub(crate) fn new_default(py: Python<'_>) -> PyResult<Self> {
        Self::new(py, None, None, None)
    }

    pub(crate) fn load(detector: &str, recognizer: &str, models_dir: Option<&Path>) -> Result<Self, String> {
        let registry = ModelRegistry::standard(models_dir).map_err(|e| e.to_string())?;
        let (recognizer, config) = registry.load_recognizer(recognizer, None).map_err(|e| e.to_string())?;
        let detector_model = registry.load_detector(detector).map_err(|e| e.to_string())?;
        let detector_name = registry.detector_config(detector).map_or_else(|_| detector.to_string(), |c| c.name);
        let pipeline = FacePipeline::new(Some(detector_model), recognizer, PipelineOptions::default());
        Ok(Self { pipeline: Mutex::new(pipeline), detector: detector_name, config })
    }
}

#[pymethods]
impl FaceAnalysis {
    #[new]
    #[pyo3(signature = (detector = None, recognizer = None, models_dir = None))]
    fn new(py: Python<'_>, detector: Option<String>, recognizer: Option<String>, models_dir: Option<std::path::PathBuf>) -> PyResult<Self> {
        let detector = detector.unwrap_or_else(|| DEFAULT_DETECTOR.to_string());
        let recognizer = recognizer.unwrap_or_else(|| DEFAULT_RECOGNIZER.to_string());
        guarded(py, || Self::load(&detector, &recognizer, models_dir.as_deref()))
    }

    /// Every face in a photo, largest box first.
    ///
    /// Args:
    ///     image: a path (``str`` or ``os.PathLike``; JPEG, PNG, WebP, BMP,
    ///         EXIF orientation applied) or an H×W×3 ``uint8`` numpy array
    ///         in **RGB** order (OpenCV's ``cv2.imread`` gives BGR: reverse
    ///         it with ``img[:, :, ::-1]``).
    ///
    /// Returns:
    ///     list[Face]: empty when the photo has no face.
    ///
    /// Raises:
    ///     visage.Error: a missing or undecodable file, an array that is not
    ///         H×W×3 uint8, an empty array, or a photo above the pixel limit.
    fn get(&self, py: Python<'_>, image: &Bound<'_, PyAny>) -> PyResult<Vec<Face>> {
        let photo = Photo::from_python(image, None)?;
        let mut faces = guarded(py, || self.faces(photo))?;
        // Largest first (stable: equal areas keep the detector's order).
        faces.sort_by(|a, b| b.area().total_cmp(&a.area()));
        Ok(faces.into_iter().map(Face::from).collect())
    }

    /// The detector's config name.
    #[getter]
    fn detector(&self) -> &str {
        &self.detector
    }

    /// The recogniser's config name.
    #[getter]
    fn recognizer(&self) -> &str {
        &self.config.name
    }

    /// The recogniser config's same-person cosine threshold (``None`` when it has none).
    #[getter]
    fn same_person_cosine(&self) -> Option<f32> {
        self.config.same_person_cosine
    }

    /// Whether each face is embedded with flip test-time augmentation.
    #[getter]
    fn flip_tta(&self) -> bool {
        self.lock().recognizer().flip_tta()
    }

    fn __repr__(&self) -> String {
        format!("FaceAnalysis(detector={:?}, recognizer={:?})", self.detector, self.config.name)
    }
}

/// Decodes a photo file as every visage command does: JPEG, PNG, WebP or
/// BMP, EXIF orientation applied, 16-bit and CMYK converted, refused above
/// the pixel limit before decoding.
///
/// Args:
///     path: the file (``str`` or ``os.PathLike``).
///
/// Returns:
///     numpy.ndarray: ``uint8`` array of shape ``(H, W, 3)``, RGB, upright.
///
/// Raises:
///     visage.Error: a missing, unreadable or undecodable file, or one above the pixel limit.
#[pyfunction]
pub fn read_image<'py>(py: Python<'py>, path: std::path::PathBuf) -> PyResult<Bound<'py, PyArray3<u8>>> {
    let image = guarded(py, || Photo::Path(path).decode().map(|(_, image)| image).map_err(|e| e.to_string()))?;
    let (width, height) = image.dimensions();
    let pixels = ndarray::Array3::from_shape_vec((height as usize, width as usize, 3), image.into_raw()).expect("RGB buffer of H × W × 3");
    Ok(pixels.into_pyarray(py))
}

/// One detected face: where it is, how sure the detector is, and its
/// embedding, whose direction is the identity and whose length the quality.
#[pyclass(module = "visage", frozen)]
pub struct Face {
    bbox: [f32; 4],
    kps: [[f32; 2]; 5],
    det_score: f32,
    feature: Vec<f32>,
    unit: Vec<f32>,
    norm: f32,
}

impl From<PhotoFace> for Face {
    fn from(face: PhotoFace) -> Self {
        Face {
            bbox: face.bbox,
            kps: face.landmarks,
            det_score: face.det_score.unwrap_or(f32::NAN),
            feature: face.embedding.feature,
            unit: face.embedding.embedding,
            norm: face.embedding.norm,
        }
    }
}

#[pymethods]
impl Face {
    /// ``float32`` array of shape ``(4,)``: ``x1, y1, x2, y2`` in photo pixels.
    #[getter]
    fn bbox<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        self.bbox.to_vec().into_pyarray(py)
    }

    /// ``float32`` array of shape ``(5, 2)``: the landmarks (eyes, nose tip,
    /// mouth corners; insightface's order) in photo pixels.
    #[getter]
    fn kps<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        ndarray::Array2::from_shape_vec((5, 2), self.kps.as_flattened().to_vec()).expect("5 × 2 landmarks").into_pyarray(py)
    }

    /// The detector's confidence, 0 to 1.
    #[getter]
    fn det_score(&self) -> f32 {
        self.det_score
    }

    /// ``float32`` array of shape ``(D,)``: the recogniser's raw feature (not
    /// normalised; with flip TTA the mean of the face's and its mirror's).
    #[getter]
    fn embedding<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        self.feature.clone().into_pyarray(py)
    }

    /// ``float32`` array of shape ``(D,)``: ``embedding / ‖embedding‖``, the
    /// identity; the cosine similarity of two faces is the dot product.
    #[getter]
    fn normed_embedding<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        self.unit.clone().into_pyarray(py)
    }

    /// ``‖embedding‖``: the face's quality (MagFace's reading: blurred,
    /// occluded or turned-away faces get shorter features).
    #[getter]
    fn quality(&self) -> f32 {
        self.norm
    }

    /// Same as :attr:`quality` (insightface's name for the feature norm).
    #[getter]
    fn embedding_norm(&self) -> f32 {
        self.norm
    }

    fn __repr__(&self) -> String {
        let [x1, y1, x2, y2] = self.bbox;
        format!("Face(bbox=[{x1:.1}, {y1:.1}, {x2:.1}, {y2:.1}], det_score={:.3}, quality={:.3})", self.det_score, self.norm)
    }
}
