"""visage: face recognition from Rust, shaped like insightface's FaceAnalysis.

>>> import visage
>>> app = visage.FaceAnalysis()
>>> faces = app.get("photo.jpg")            # largest face first
>>> faces[0].normed_embedding @ faces[1].normed_embedding   # cosine similarity

Every result equals what the ``visage`` command line computes on the same
input: the same models, settings and code (the native module ``visage._visage``
is built from the same Rust crates). Work runs with the GIL released; bad
input raises :class:`visage.Error`.
"""

from ._visage import (
    DEFAULT_DETECTOR,
    DEFAULT_RECOGNIZER,
    Error,
    Face,
    FaceAnalysis,
    Gallery,
    __version__,
    cluster,
    read_image,
    roc,
)

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
