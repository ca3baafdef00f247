"""FaceAnalysis.get against `visage embed` on the same photos: same faces,
same boxes, landmarks and scores, same embeddings; arrays as paths;
errors; threads."""

import threading
import time

import numpy as np
import pytest

import visage
from conftest import PHOTOS, REPO, embed_with_cli

# `visage embed`'s CSV rounds boxes and landmarks to 0.01 px and scores and
# magnitudes to 1e-4; those are the tolerances of the CSV columns. The
# embeddings are read from the .npy as float32: measured difference 0 (the
# CLI embeds faces 16 at a time across photos, `get` one photo's faces at
# once, and ONNX Runtime gives the same rows); the assert allows 1e-6.
EMBEDDING_TOLERANCE = 1e-6


def check_against_cli(app, by_file, files):
    faces_seen = 0
    for path in files:
        cli_faces = by_file.get(str(path), [])
        faces = app.get(path)
        assert len(faces) == len(cli_faces), f"{path}: {len(faces)} faces, the CLI found {len(cli_faces)}"
        areas = [(f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]) for f in faces]
        assert areas == sorted(areas, reverse=True), f"{path}: faces not largest first"
        for row, cli_embedding in cli_faces:
            box = np.array([float(row[k]) for k in ("x1", "y1", "x2", "y2")])
            face = min(faces, key=lambda f: np.abs(f.bbox - box).max())
            assert np.abs(face.bbox - box).max() <= 0.005 + 1e-4
            kps = np.array([[float(row[f"lx{i}"]), float(row[f"ly{i}"])] for i in range(5)])
            assert np.abs(face.kps - kps).max() <= 0.005 + 1e-4
            assert abs(face.det_score - float(row["det_score"])) <= 5e-5 + 1e-7
            assert abs(face.quality - float(row["magnitude"])) <= 5e-5 + 1e-6
            assert np.abs(face.normed_embedding - cli_embedding).max() <= EMBEDDING_TOLERANCE
            faces_seen += 1
    return faces_seen


def test_get_equals_visage_embed_on_the_bundled_photos(app, cli, photos, tmp_path):
    by_file = embed_with_cli(cli, tmp_path, [PHOTOS.resolve()])
    assert check_against_cli(app, by_file, [p.resolve() for p in photos]) == 24


def test_get_equals_visage_embed_on_faces_small(app, cli, faces_small, tmp_path):
    files = [p.resolve() for p in faces_small]
    by_file = embed_with_cli(cli, tmp_path, files)
    assert check_against_cli(app, by_file, files) >= len(files)


def test_face_fields(app):
    faces = app.get(PHOTOS / "obama_and_biden.jpg")
    assert len(faces) == 3
    face = faces[0]
    assert face.bbox.dtype == np.float32 and face.bbox.shape == (4,)
    assert face.kps.dtype == np.float32 and face.kps.shape == (5, 2)
    assert face.embedding.dtype == np.float32 and face.embedding.shape == (128,)
    assert face.normed_embedding.dtype == np.float32 and face.normed_embedding.shape == (128,)
    assert isinstance(face.det_score, float) and 0.5 < face.det_score <= 1.0
    norm = float(np.linalg.norm(face.embedding.astype(np.float64)))
    assert abs(face.quality - norm) < 1e-5 * norm
    assert face.embedding_norm == face.quality
    np.testing.assert_allclose(face.normed_embedding, face.embedding / face.quality, rtol=0, atol=1e-6)
    x1, y1, x2, y2 = face.bbox
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.kps)
    # the two leaders are one person each: the cosine across them is low
    assert float(faces[0].normed_embedding @ faces[1].normed_embedding) < 0.3
    assert "Face(bbox=" in repr(face)
    assert app.detector == "face_detection_yunet_2023mar_dynamic"
    assert app.recognizer == visage.DEFAULT_RECOGNIZER
    assert app.flip_tta is True
    assert 0.0 < app.same_person_cosine < 1.0


def test_same_person_is_closer_than_different_people(app):
    obama = [app.get(PHOTOS / f"obama_{i}.jpg")[0].normed_embedding for i in (1, 2)]
    biden = app.get(PHOTOS / "biden_1.jpg")[0].normed_embedding
    same, different = float(obama[0] @ obama[1]), float(obama[0] @ biden)
    assert same > app.same_person_cosine > different


def test_arrays_give_the_same_faces_as_paths(app, photos):
    for path in [PHOTOS / "obama_and_biden.jpg", PHOTOS / "alex_lacamoire_3.png", PHOTOS / "kit_with_rose.jpg"]:
        pixels = visage.read_image(path)
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
        expected = app.get(path)
        # contiguous, reversed twice (negative strides), Fortran order, a view of a wider array
        wide = np.zeros((pixels.shape[0], pixels.shape[1], 6), np.uint8)
        wide[:, :, ::2] = pixels
        for array in [pixels, pixels[:, :, ::-1][:, :, ::-1], np.asfortranarray(pixels), wide[:, :, ::2]]:
            got = app.get(array)
            assert len(got) == len(expected)
            for a, b in zip(got, expected):
                assert np.array_equal(a.bbox, b.bbox) and np.array_equal(a.kps, b.kps)
                assert np.array_equal(a.embedding, b.embedding) and a.det_score == b.det_score
    # a path may be str, pathlib.Path or bytes-free os.PathLike
    assert len(app.get(str(PHOTOS / "biden_1.jpg"))) == 1


def test_a_photo_without_a_face_gives_an_empty_list(app):
    assert app.get(np.full((240, 320, 3), 128, np.uint8)) == []


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((10, 0, 3), np.uint8), "empty"),
        (np.zeros((64, 64, 3), np.float32), "uint8"),
        (np.zeros((64, 64), np.uint8), "H×W×3"),
        (np.zeros((64, 64, 4), np.uint8), "H×W×3"),
        (np.zeros((2, 64, 64, 3), np.uint8), "H×W×3"),
        ([[1, 2, 3]], "path"),
        (42, "path"),
    ],
)
def test_bad_arrays_and_objects_raise_visage_error(app, image, message):
    with pytest.raises(visage.Error, match=message):
        app.get(image)


def test_bad_files_raise_visage_error(app, tmp_path):
    with pytest.raises(visage.Error, match="cannot read"):
        app.get(tmp_path / "missing.jpg")
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("this is text, not a JPEG")
    with pytest.raises(visage.Error, match="notes.jpg"):
        app.get(not_an_image)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes((PHOTOS / "biden_1.jpg").read_bytes()[:2000])
    with pytest.raises(visage.Error, match="cut.jpg"):
        app.get(truncated)
    with pytest.raises(visage.Error, match="cannot read"):
        visage.read_image(tmp_path / "missing.png")
    with pytest.raises(visage.Error):
        app.get(tmp_path)  # a folder


def test_unknown_models_raise_visage_error(tmp_path):
    assert issubclass(visage.Error, Exception)
    with pytest.raises(visage.Error, match="no detector called `nope`"):
        visage.FaceAnalysis(detector="nope")
    with pytest.raises(visage.Error, match="no recogniser called `nope`"):
        visage.FaceAnalysis(recognizer="nope")
    with pytest.raises(visage.Error):
        visage.FaceAnalysis(detector=str(tmp_path / "missing.toml"))
    # a known config whose model file is not bundled and not in models_dir
    with pytest.raises(visage.Error, match="scrfd"):
        visage.FaceAnalysis(detector="scrfd", models_dir=tmp_path)


def test_models_dir_serves_a_model_that_is_not_bundled(cli, tmp_path):
    # arcface_mobileface_128d_paddle's ONNX file is in the repository's models/, not in the package
    app = visage.FaceAnalysis(recognizer="arcface_mobileface_128d_paddle", models_dir=REPO / "models")
    assert app.recognizer == "arcface_mobileface_128d_paddle"
    files = [(PHOTOS / name).resolve() for name in ("biden_1.jpg", "obama_and_biden.jpg")]
    options = ["--recognizer", "arcface_mobileface_128d_paddle", "--models-dir", REPO / "models"]
    by_file = embed_with_cli(cli, tmp_path, files, *options)
    assert check_against_cli(app, by_file, files) == 4
    default = visage.FaceAnalysis().get(files[0])[0].normed_embedding
    # another network than the default: close (the same weights, other PRelu nodes) but not the same
    assert 0.95 < float(app.get(files[0])[0].normed_embedding @ default) < 0.9999


def test_a_rust_panic_is_a_visage_error():
    with pytest.raises(visage.Error, match="internal error"):
        visage._visage._panic_for_tests()


def test_two_threads_share_one_face_analysis(app, photos):
    expected = {p: [f.embedding for f in app.get(p)] for p in photos}
    results, errors = {}, []

    def work(files):
        try:
            for _ in range(2):
                for p in files:
                    results.setdefault(p, []).append([f.embedding for f in app.get(p)])
        except Exception as e:  # reported below, with the thread's file
            errors.append(e)

    threads = [threading.Thread(target=work, args=(photos[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for p in photos:
        assert len(results[p]) == 2
        for run in results[p]:
            assert len(run) == len(expected[p])
            assert all(np.array_equal(a, b) for a, b in zip(run, expected[p]))


def test_get_releases_the_gil(app):
    # While another thread is inside get(), this thread keeps running Python:
    # with the GIL held it could not count at all until get() returned.
    done = threading.Event()
    ran = []

    def work():
        started = time.perf_counter()
        for _ in range(3):
            app.get(PHOTOS / "obama_and_biden.jpg")
        ran.append(time.perf_counter() - started)
        done.set()

    thread = threading.Thread(target=work)
    count = 0
    thread.start()
    while not done.is_set():
        count += 1
    thread.join()
    # The counting loop makes well over 10^5 iterations per second when it has the GIL.
    assert count > 10_000 * ran[0], f"{count} iterations in {ran[0]:.2f} s"
