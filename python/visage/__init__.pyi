"""Type stubs of the visage package (the native module visage._visage)."""

import os
from typing import Any, Dict, List, Optional, Sequence, TypedDict, Union, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_RECOGNIZER",
    "Error",
    "Face",
    "FaceAnalysis",
    "Gallery",
    "__version__",
    "cluster",
    "read_image",
    "roc",
]

__version__: str
DEFAULT_DETECTOR: str
DEFAULT_RECOGNIZER: str

_ImageLike = Union[str, "os.PathLike[str]", npt.NDArray[np.uint8]]
"""A path (JPEG, PNG, WebP, BMP) or an H×W×3 uint8 RGB array."""

_ArrayLike = Union[npt.ArrayLike, Sequence[float]]

class Error(Exception):
    """Input visage cannot use, or a failure of the models or the gallery; the message says which and why."""

@final
class Face:
    """One detected face: box, landmarks, score, embedding and quality."""

    @property
    def bbox(self) -> npt.NDArray[np.float32]:
        """float32 (4,): x1, y1, x2, y2 in photo pixels."""
    @property
    def kps(self) -> npt.NDArray[np.float32]:
        """float32 (5, 2): the five landmarks (eyes, nose tip, mouth corners) in photo pixels."""
    @property
    def det_score(self) -> float:
        """The detector's confidence, 0 to 1."""
    @property
    def embedding(self) -> npt.NDArray[np.float32]:
        """float32 (D,): the recogniser's raw feature (not normalised)."""
    @property
    def normed_embedding(self) -> npt.NDArray[np.float32]:
        """float32 (D,): embedding / ‖embedding‖; the dot product of two is their cosine similarity."""
    @property
    def quality(self) -> float:
        """‖embedding‖: the face's quality."""
    @property
    def embedding_norm(self) -> float:
        """Same as quality (insightface's name)."""

@final
class FaceAnalysis:
    """Detector + recogniser, loaded once; results equal the command line's."""

    def __new__(
        cls,
        detector: Optional[str] = None,
        recognizer: Optional[str] = None,
        models_dir: Union[str, "os.PathLike[str]", None] = None,
    ) -> "FaceAnalysis":
        """Loads the models (default: YuNet-2023mar and the bundled ArcFace MobileFaceNet).

        Raises visage.Error for an unknown name or a missing model file.
        """
    def get(self, image: _ImageLike) -> List[Face]:
        """Every face of a photo (path or H×W×3 uint8 RGB array), largest box first; [] without a face.

        Raises visage.Error for a missing or undecodable file or a wrongly shaped, typed or empty array.
        """
    @property
    def detector(self) -> str:
        """The detector's config name."""
    @property
    def recognizer(self) -> str:
        """The recogniser's config name."""
    @property
    def same_person_cosine(self) -> Optional[float]:
        """The recogniser config's same-person cosine threshold."""
    @property
    def flip_tta(self) -> bool:
        """Whether faces are embedded with flip test-time augmentation."""

def read_image(path: Union[str, "os.PathLike[str]"]) -> npt.NDArray[np.uint8]:
    """A photo decoded as every visage command decodes it: (H, W, 3) uint8 RGB, EXIF orientation applied.

    Raises visage.Error for a missing, undecodable or oversized file.
    """

class _TarAtFar(TypedDict):
    far: float
    tar: float

class _RocReport(TypedDict):
    auc: float
    eer: float
    tar_at_far: List[_TarAtFar]

def roc(scores: _ArrayLike, labels: _ArrayLike, fars: Optional[_ArrayLike] = None) -> _RocReport:
    """AUC, EER and TAR@FAR of scored pairs (label 1 = same identity), as `visage eval roc --json`.

    fars defaults to 1e-6 … 1e-1. Raises visage.Error for mismatched lengths,
    non-finite scores, labels other than 0/1, a missing class or a FAR outside [0, 1].
    """

def cluster(
    X: npt.ArrayLike,
    method: str,
    *,
    metric: str = "cosine",
    threshold: Optional[float] = None,
    linkage: str = "average",
    eps: Optional[float] = None,
    min_samples: int = 5,
    k: Optional[int] = None,
    restarts: int = 10,
    seed: int = 0,
) -> npt.NDArray[np.int64]:
    """Cluster labels of the rows of X (int64, -1 = noise), as `visage cluster`.

    method: "ahc" (threshold or k; linkage), "dbscan" (eps, min_samples) or
    "kmeans" (k, restarts, seed); metric: "cosine" or "euclidean".
    Raises visage.Error for an empty, non-2-D or non-finite X and for bad options.
    """

class _Match(TypedDict):
    identity: str
    score: float

class _SearchFace(TypedDict):
    box: List[float]
    quality: float
    decision: Optional[str]
    matches: List[_Match]

class _EnrolledFace(TypedDict):
    source: str
    quality: float

class _EnrolReport(TypedDict):
    name: str
    created: bool
    enrolled: List[_EnrolledFace]
    refused: List[Dict[str, Any]]
    templates: int

@final
class Gallery:
    """Enrolled people in a folder or a postgres:// database, shared with the command line."""

    def __new__(
        cls,
        location: Union[str, "os.PathLike[str]"],
        app: Optional[FaceAnalysis] = None,
        *,
        threshold: Optional[float] = None,
        min_quality: Optional[float] = None,
        min_face_px: Optional[float] = None,
    ) -> "Gallery":
        """A gallery at location; app embeds the photos (default FaceAnalysis()).

        threshold, min_quality and min_face_px apply when the gallery is created.
        """
    def enrol(
        self,
        name: str,
        images: Union[_ImageLike, Sequence[_ImageLike]],
        metadata: Optional[Dict[str, Any]] = None,
    ) -> _EnrolReport:
        """Enrols the largest face of each image as name; as `visage gallery enrol --json`.

        Raises visage.Error when nothing could be enrolled (each refusal in the message).
        """
    def search(self, image: _ImageLike, k: int = 5) -> List[_SearchFace]:
        """Every face of the image looked up: the faces of `visage gallery search --json`."""
    def list(self) -> List[Dict[str, Any]]:
        """The enrolled identities (id, name, metadata, templates, best_quality)."""
    @property
    def location(self) -> str:
        """The location, as given."""
