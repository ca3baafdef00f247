"""The reference end-to-end pipeline for `visage bench analyze`: the steps
`visage analyze` takes, written the way a Python user would with OpenCV,
onnxruntime and scikit-learn.

photos folder → decode (cv2.imread, EXIF orientation applied) → YuNet-2023mar
(cv2.FaceDetectorYN on the photo letterboxed into 640×640, pad right/bottom,
score 0.6, NMS 0.3, top-k 5000: the same input geometry and thresholds as
visage's YuNet) → every face: Umeyama similarity of its 5 landmarks onto the
arcface 112×112 template (numpy) → cv2.warpAffine → Paddle ArcFace in
onnxruntime, batches of 32 → magnitude ‖f‖ and unit embedding →
agglomerative clustering (average linkage, cosine distance, distance
threshold) → a JSON summary.

Threads: OpenCV, onnxruntime intra-op and the BLAS pools are all set to
--threads. Prints the summary (photos, faces, clusters, seconds after the
imports) as one JSON line and writes it, with per-face rows, to --out.
"""

import argparse
import json
import os
import sys
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", help="folder of photos (searched recursively)")
    parser.add_argument("--out", required=True, help="JSON summary")
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--detector", default="face_detection_yunet_2023mar.onnx")
    parser.add_argument("--recognizer", default="arcface_mobileface_128d_paddle.onnx")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32, help="faces per recogniser call")
    parser.add_argument("--distance-threshold", type=float, default=0.6, help="cosine distance at which clusters stop merging")
    return parser.parse_args()


ARGS = parse_args()
# The BLAS pools read these when numpy / scikit-learn are imported.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = str(ARGS.threads)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from sklearn.cluster import AgglomerativeClustering  # noqa: E402

# insightface's 5-point template for 112×112 crops: eyes, nose, mouth corners
# as seen in the image (left first).
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
DETECTOR_SIDE = 640
EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def umeyama(src, dst):
    """Least-squares similarity (rotation, uniform scale, translation, no
    reflection) taking src points onto dst (Umeyama 1991): a 2×3 matrix."""
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    d = np.ones(2)
    if np.linalg.det(covariance) < 0:
        d[1] = -1
    rotation = u @ np.diag(d) @ vt
    scale = (singular * d).sum() / src_c.var(0).sum()
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def photos_in(folder):
    found = []
    for root, _, files in os.walk(folder):
        found += [os.path.join(root, f) for f in files if f.lower().endswith(EXTENSIONS)]
    return sorted(found)


def detect(detector, bgr):
    """Faces as (box [x1,y1,x2,y2], score, 5×2 landmarks) in photo pixels."""
    height, width = bgr.shape[:2]
    scale = min(DETECTOR_SIDE / width, DETECTOR_SIDE / height)
    new_w, new_h = round(width * scale), round(height * scale)
    canvas = np.zeros((DETECTOR_SIDE, DETECTOR_SIDE, 3), np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    _, rows = detector.detect(canvas)
    faces = []
    for row in rows if rows is not None else []:
        # row: x, y, w, h, then 5 landmarks (image-left eye first, as the template), score
        x, y, w, h = row[:4] / scale
        faces.append(([x, y, x + w, y + h], float(row[14]), row[4:14].reshape(5, 2) / scale))
    return faces


def main():
    start = time.perf_counter()
    cv2.setNumThreads(ARGS.threads)
    detector = cv2.FaceDetectorYN.create(
        os.path.join(ARGS.models_dir, ARGS.detector), "", (DETECTOR_SIDE, DETECTOR_SIDE), 0.6, 0.3, 5000
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = ARGS.threads
    session = ort.InferenceSession(os.path.join(ARGS.models_dir, ARGS.recognizer), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    rows, crops, photos = [], [], 0
    for path in photos_in(ARGS.photos):
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            print(f"{path}: cannot decode", file=sys.stderr)
            continue
        photos += 1
        for index, (box, score, landmarks) in enumerate(detect(detector, bgr)):
            matrix = umeyama(landmarks.astype(np.float64), ARCFACE_TEMPLATE)
            crop = cv2.warpAffine(bgr, matrix, (112, 112), flags=cv2.INTER_LINEAR, borderValue=0)
            crops.append(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
            rows.append({"file": path, "face": index, "box": [float(v) for v in box], "score": score})

    features = []
    for first in range(0, len(crops), ARGS.batch):
        blob = (np.stack(crops[first:first + ARGS.batch]).astype(np.float32) - 127.5) / 127.5
        features.append(session.run(None, {input_name: np.ascontiguousarray(blob.transpose(0, 3, 1, 2))})[0])
    features = np.concatenate(features) if features else np.zeros((0, 128), np.float32)
    magnitudes = np.linalg.norm(features, axis=1)
    embeddings = features / np.maximum(magnitudes[:, None], 1e-12)

    if len(embeddings) >= 2:
        labels = AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage="average", distance_threshold=ARGS.distance_threshold
        ).fit_predict(embeddings)
    else:
        labels = np.zeros(len(embeddings), int)
    for row, magnitude, label in zip(rows, magnitudes, labels):
        row["magnitude"] = float(magnitude)
        row["cluster"] = int(label)

    summary = {
        "photos": photos,
        "faces": len(rows),
        "clusters": int(len(set(labels.tolist()))),
        "seconds": time.perf_counter() - start,
    }
    with open(ARGS.out, "w") as f:
        json.dump({**summary, "per_face": rows}, f)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
