//! `visage.Gallery`: enrol people and search photos, on the same stores and
//! with the same rules as `visage gallery enrol` and `visage gallery search`.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyList;
use visage_gallery::{FaceMatches, FaceSample, GalleryLocation, GallerySetup, QualityPolicy, Refusal, RefusedFace, SearchResponse};
use visage_infer::pipeline::largest_face;

use crate::convert::{json_to_python, Photo};
use crate::face::FaceAnalysis;
use crate::{error, guarded};

/// A gallery of enrolled people: a folder (the embedded store, created on
/// first enrolment) or a ``postgres://`` URL, exactly as the command line's
/// ``--gallery``. The command line and this class can use the same gallery.
///
/// Args:
///     location: a folder path or a ``postgres://``/``postgresql://`` URL.
///     app: the :class:`FaceAnalysis` whose models embed the photos
///         (default: ``FaceAnalysis()``); a gallery holds one recogniser's
///         embeddings, and opening it with another is refused.
///     threshold: when the gallery is created, its decision threshold
///         (cosine; default: the recogniser config's ``same_person_cosine``).
///     min_quality: when the gallery is created, refuse faces whose quality
///         ``‖x‖`` is below this (default: none).
///     min_face_px: when the gallery is created, refuse faces narrower or
///         shorter than this many pixels (default as the command line).
///
/// Each call opens the gallery, works and closes it, as one command does, so
/// other processes (the command line, ``visage serve``) can use it between calls.
#[pyclass(module = "visage", frozen)]
pub struct Gallery {
    location: GalleryLocation,
    text: String,
    app: Py<FaceAnalysis>,
    quality: QualityPolicy,
    threshold: Option<f32>,
}

impl Gallery {
    fn setup(&self, app: &FaceAnalysis) -> GallerySetup {
        let config = app.recognizer_config();
        GallerySetup {
            recognizer: config.name.clone(),
            same_person_cosine: config.same_person_cosine,
            manual_threshold: self.threshold,
            quality: self.quality,
        }
    }
}

#[pymethods]
impl Gallery {
    #[new]
    #[pyo3(signature = (location, app = None, *, threshold = None, min_quality = None, min_face_px = None))]
    fn new(
        py: Python<'_>,
        location: &Bound<'_, PyAny>,
        app: Option<Py<FaceAnalysis>>,
        threshold: Option<f32>,
        min_quality: Option<f32>,
        min_face_px: Option<f32>,
    ) -> PyResult<Self> {
        let text: String = match location.extract::<String>() {
            Ok(text) => text,
            Err(_) => {
                location.extract::<PathBuf>().map_err(|_| error("a gallery location is a folder path or a postgres:// URL"))?.display().to_string()
            }
        };
        if text.is_empty() {
            return Err(error("a gallery location is a folder path or a postgres:// URL, not an empty string"));
        }
        let app = match app {
            Some(app) => app,
            None => Py::new(py, FaceAnalysis::new_default(py)?)?,
        };
        let quality = QualityPolicy { min_magnitude: min_quality, min_face_px: min_face_px.unwrap_or(QualityPolicy::default().min_face_px) };
        Ok(Self { location: GalleryLocation::parse(&text), text, app, quality, threshold })
    }

    /// Enrols the largest face of each photo as ``name``.
    ///
    /// Args:
    ///     name: the person (created if new, else the faces are added).
    ///     images: one image or a list of images, each a path or an H×W×3
    ///         uint8 RGB array (arrays are named ``array 0``, ``array 1``, …
    ///         in the report, by position).
    ///     metadata: a JSON-serialisable dict stored with the identity
    ///         (replaces what it had).
    ///
    /// Returns:
    ///     dict: ``{"name", "created", "enrolled": [{"source", "quality"}],
    ///     "refused": [{"source", "reason", …}], "templates"}``, as
    ///     ``visage gallery enrol --json``. Photos without a usable face are
    ///     listed under ``refused`` with the reason.
    ///
    /// Raises:
    ///     visage.Error: a bad name or metadata, a gallery of another
    ///         recogniser, an image that is neither a path nor an RGB array,
    ///         or nothing enrolled at all (the message gives each refusal).
    #[pyo3(signature = (name, images, metadata = None))]
    fn enrol<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        images: &Bound<'py, PyAny>,
        metadata: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let photos = photo_list(images)?;
        let metadata = match metadata {
            Some(value) if !value.is_none() => {
                let text: String = py
                    .import("json")?
                    .call_method1("dumps", (value,))
                    .map_err(|e| error(format!("metadata: not JSON-serialisable: {e}")))?
                    .extract()?;
                Some(serde_json::from_str::<serde_json::Value>(&text).map_err(|e| error(format!("metadata: {e}")))?)
            }
            _ => None,
        };
        let app = self.app.get();
        let setup = self.setup(app);
        let count = photos.len();
        let report = guarded(py, || {
            visage_gallery::model::check_name(name).map_err(|e| e.to_string())?;
            // Fail on a wrong location or recogniser before running any model.
            let existing = self.location.open_for(&setup, false).map_err(|e| e.to_string())?;
            let mut faces = Vec::new();
            let mut refused = Vec::new();
            for photo in photos {
                let source = photo.name();
                let decoded = photo.decode();
                let found = decoded.map_err(|e| e.to_string()).and_then(|(path, image)| app.faces_in(&path, &image));
                match found {
                    Ok(photo_faces) => match largest_face(&photo_faces) {
                        Some(i) => {
                            let face = &photo_faces[i];
                            faces.push(FaceSample {
                                embedding: face.embedding.embedding.clone(),
                                magnitude: face.embedding.norm,
                                bbox: Some(face.bbox),
                                source,
                            });
                        }
                        None => refused.push(RefusedFace { source, refusal: Refusal::NoFace }),
                    },
                    Err(message) => {
                        let message = message.strip_prefix(&format!("{source}: ")).unwrap_or(&message).to_string();
                        refused.push(RefusedFace { source, refusal: Refusal::Unreadable { message } });
                    }
                }
            }
            let report = self.location.enrol_photos(existing, &setup, name, metadata, &faces, refused).map_err(|e| e.to_string())?;
            if report.accepted == 0 {
                let reasons: Vec<String> = report.refused.iter().map(|r| format!("{}: {}", r.source, r.refusal)).collect();
                return Err(format!("nothing enrolled: all {count} photos refused ({})", reasons.join("; ")));
            }
            Ok(report)
        })?;
        json_to_python(py, &report)
    }

    /// Every face of a photo looked up in the gallery.
    ///
    /// Args:
    ///     image: a path or an H×W×3 uint8 RGB array.
    ///     k: matches per face (default 5).
    ///
    /// Returns:
    ///     list[dict]: one ``{"box": [x1, y1, x2, y2], "quality",
    ///     "decision": name or None, "matches": [{"identity", "score"}]}``
    ///     per face (empty when the photo has none), as the ``faces`` of
    ///     ``visage gallery search --json``.
    ///
    /// Raises:
    ///     visage.Error: no gallery there, a gallery of another recogniser,
    ///         or an image that cannot be read.
    #[pyo3(signature = (image, k = 5))]
    fn search<'py>(&self, py: Python<'py>, image: &Bound<'py, PyAny>, k: usize) -> PyResult<Bound<'py, PyAny>> {
        let photo = Photo::from_python(image, None)?;
        let app = self.app.get();
        let setup = self.setup(app);
        let response = guarded(py, || {
            let store = self.location.open(true).map_err(|e| e.to_string())?;
            let config = setup.check(store.as_ref()).map_err(|e| e.to_string())?;
            let faces = app.faces(photo)?;
            let queries: Vec<&[f32]> = faces.iter().map(|f| f.embedding.embedding.as_slice()).collect();
            let found = store.search(&queries, k).map_err(|e| e.to_string())?;
            let faces =
                faces.iter().zip(found).map(|(face, matches)| FaceMatches::new(face.bbox, face.embedding.norm, matches, &config.threshold)).collect();
            Ok(SearchResponse { faces })
        })?;
        json_to_python(py, &response)?.get_item("faces")
    }

    /// The enrolled identities: ``[{"id", "name", "metadata", "templates", "best_quality"}]``.
    fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let identities = guarded(py, || self.location.open(true).and_then(|store| store.list()).map_err(|e| e.to_string()))?;
        json_to_python(py, &identities)
    }

    /// The location, as given.
    #[getter]
    fn location(&self) -> &str {
        &self.text
    }

    fn __repr__(&self) -> String {
        format!("Gallery({:?})", self.text)
    }
}

/// One image or a list/tuple of images.
fn photo_list(images: &Bound<'_, PyAny>) -> PyResult<Vec<Photo>> {
    let single =
        images.cast::<numpy::PyUntypedArray>().is_ok() || images.is_instance_of::<pyo3::types::PyString>() || images.hasattr("__fspath__")?;
    if single {
        return Ok(vec![Photo::from_python(images, Some(0))?]);
    }
    let list =
        images.cast::<PyList>().map(|l| l.iter().collect::<Vec<_>>()).or_else(|_| images.try_iter().and_then(|it| it.collect::<PyResult<Vec<_>>>()));
    let items = list.map_err(|_| error("images: expected an image or a list of images (paths or H×W×3 uint8 arrays)"))?;
    if items.is_empty() {
        return Err(error("images: no photos given"));
    }
    items.iter().enumerate().map(|(i, item)| Photo::from_python(item, Some(i))).collect()
}
