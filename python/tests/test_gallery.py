"""visage.Gallery against `visage gallery enrol/search --json`: a gallery
enrolled by the command line and one enrolled from Python give the same
searches, each searched both ways; and the errors."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import visage
from conftest import PHOTOS, REPO, cli_json

PEOPLE = {
    "obama": ["obama_1.jpg", "obama_2.jpg"],
    "biden": ["biden_1.jpg"],
    "kit": ["kit_harington_1.jpg", "kit_harington_2.jpg"],
    "rose": ["rose_leslie_1.jpg"],
}
QUERIES = ["obama_and_biden.jpg", "kit_with_rose.jpg", "obama_3.jpg", "biden_2.jpg", "alex_lacamoire_1.jpg", "rose_leslie_2.jpg"]

# Scores and qualities are float32 values printed by the CLI's JSON and
# returned by the package through the same serialisation: equal when the
# embeddings are (they are: see test_face.py). Boxes likewise.
SCORE_TOLERANCE = 1e-6


def photo(name):
    return str((PHOTOS / name).resolve())


@pytest.fixture(scope="module")
def galleries(cli, app, tmp_path_factory):
    """Two galleries of the same people: one enrolled with the CLI, one from Python; and both enrolment reports."""
    root = tmp_path_factory.mktemp("galleries")
    by_cli, by_python = root / "cli", root / "python"
    cli_reports, python_reports = {}, {}
    gallery = visage.Gallery(by_python, app)
    for name, files in PEOPLE.items():
        cli_reports[name] = cli_json(cli, "gallery", "enrol", name, *map(photo, files), "--gallery", by_cli, "--json")
        python_reports[name] = gallery.enrol(name, [photo(f) for f in files])
    return by_cli, by_python, cli_reports, python_reports


def same_search(a, b):
    assert len(a) == len(b)
    for fa, fb in zip(a, b):
        assert fa["decision"] == fb["decision"]
        assert np.abs(np.array(fa["box"]) - np.array(fb["box"])).max() <= SCORE_TOLERANCE * 1000
        assert abs(fa["quality"] - fb["quality"]) <= SCORE_TOLERANCE * 10
        assert [m["identity"] for m in fa["matches"]] == [m["identity"] for m in fb["matches"]]
        for ma, mb in zip(fa["matches"], fb["matches"]):
            assert abs(ma["score"] - mb["score"]) <= SCORE_TOLERANCE


def test_enrol_reports_equal_the_cli(galleries):
    _, _, cli_reports, python_reports = galleries
    assert python_reports == cli_reports
    assert python_reports["obama"]["created"] is True
    assert python_reports["obama"]["templates"] == 2
    assert [e["source"] for e in python_reports["kit"]["enrolled"]] == [photo(f) for f in PEOPLE["kit"]]


def test_search_equals_the_cli_on_both_galleries(cli, app, galleries):
    by_cli, by_python, _, _ = galleries
    decisions = {}
    for query in QUERIES:
        expected = cli_json(cli, "gallery", "search", photo(query), "--gallery", by_cli, "--json", "-k", "3")["faces"]
        assert len(expected) >= 1
        for location in (by_cli, by_python):
            got = visage.Gallery(location, app).search(photo(query), k=3)
            same_search(got, expected)
            also_cli = cli_json(cli, "gallery", "search", photo(query), "--gallery", location, "--json", "-k", "3")["faces"]
            same_search(got, also_cli)
        decisions[query] = [face["decision"] for face in expected]
    # the decisions are right, not only equal
    assert decisions["obama_3.jpg"] == ["obama"]
    # biden_2.jpg: Biden, and two background detections of low quality that match nobody
    assert decisions["biden_2.jpg"] == ["biden", None, None]
    assert decisions["alex_lacamoire_1.jpg"] == [None]
    assert sorted(d for d in decisions["kit_with_rose.jpg"] if d) == ["kit", "rose"]
    assert {"obama", "biden"} <= set(decisions["obama_and_biden.jpg"])


def test_search_takes_arrays_and_lists_identities(app, galleries):
    _, by_python, _, _ = galleries
    gallery = visage.Gallery(by_python, app)
    by_path = gallery.search(photo("obama_3.jpg"))
    by_array = gallery.search(visage.read_image(PHOTOS / "obama_3.jpg"))
    assert by_array == by_path
    assert len(by_path[0]["matches"]) == 4  # k=5, four people enrolled
    names = sorted(identity["name"] for identity in gallery.list())
    assert names == sorted(PEOPLE)
    assert gallery.search(np.full((120, 160, 3), 200, np.uint8)) == []
    assert gallery.location == str(by_python)


def test_enrol_arrays_and_refusals(app, tmp_path):
    gallery = visage.Gallery(tmp_path / "g", app, min_face_px=100)
    blank = np.full((200, 200, 3), 90, np.uint8)
    report = gallery.enrol("obama", [visage.read_image(PHOTOS / "obama_1.jpg"), blank, photo("obama_2.jpg")], metadata={"team": 44})
    assert [e["source"] for e in report["enrolled"]] == ["array 0", photo("obama_2.jpg")]
    assert report["refused"] == [{"source": "array 1", "reason": "no_face"}]
    assert report["templates"] == 2 and report["created"] is True
    assert gallery.list()[0]["metadata"] == {"team": 44}
    # a single image, not in a list; and a face below the gallery's min_face_px
    report = gallery.enrol("obama", photo("obama_5.jpg"))
    assert report["templates"] == 3 and report["created"] is False
    with pytest.raises(visage.Error, match=r"nothing enrolled: all 1 photos refused \(.*kit_with_rose.jpg: face too small"):
        gallery.enrol("rose", photo("kit_with_rose.jpg"))


def test_gallery_errors(app, tmp_path):
    gallery = visage.Gallery(tmp_path / "g", app)
    with pytest.raises(visage.Error, match="nothing enrolled"):
        gallery.enrol("nobody", [np.full((100, 100, 3), 0, np.uint8)])
    with pytest.raises(visage.Error, match="no photos"):
        gallery.enrol("nobody", [])
    with pytest.raises(visage.Error, match="name"):
        gallery.enrol("", photo("biden_1.jpg"))
    with pytest.raises(visage.Error, match="metadata"):
        gallery.enrol("biden", photo("biden_1.jpg"), metadata={"x": object()})
    with pytest.raises(visage.Error, match="H×W×3"):
        gallery.enrol("biden", [np.zeros((10, 10), np.uint8)])
    # nothing was created by the refused enrolments: searching finds no gallery
    with pytest.raises(visage.Error):
        gallery.search(photo("biden_1.jpg"))
    gallery.enrol("biden", photo("biden_1.jpg"))
    # a missing file is refused with its reason, the others enrolled
    report = gallery.enrol("biden", [photo("biden_2.jpg"), str(tmp_path / "missing.jpg")])
    assert report["refused"][0]["source"] == str(tmp_path / "missing.jpg")
    assert "cannot read" in report["refused"][0]["message"]
    # another recogniser's embeddings do not belong in this gallery
    other = visage.FaceAnalysis(recognizer="arcface_mobileface_128d_paddle", models_dir=REPO / "models")
    with pytest.raises(visage.Error, match="arcface_mobileface_128d_paddle"):
        visage.Gallery(tmp_path / "g", other).search(photo("biden_1.jpg"))
    with pytest.raises(visage.Error, match="arcface_mobileface_128d_paddle"):
        visage.Gallery(tmp_path / "g", other).enrol("biden", photo("biden_1.jpg"))
    with pytest.raises(visage.Error, match="empty"):
        visage.Gallery("", app)
    with pytest.raises(visage.Error, match="folder path or a postgres"):
        visage.Gallery(42, app)


@pytest.fixture(scope="module")
def postgres_url():
    """A real PostgreSQL + pgvector server for this module: visage-lab's
    pgserver example (built by `cargo test --workspace`; $VISAGE_PGSERVER),
    stopped and deleted when its standard input closes."""
    binary = Path(os.environ.get("VISAGE_PGSERVER", REPO / "target" / "debug" / "examples" / "pgserver"))
    if not binary.is_file():
        pytest.fail(f"{binary} does not exist: build it with cargo build -p visage-lab --example pgserver, or set VISAGE_PGSERVER")
    server = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = server.stdout.readline().strip()
    if not url.startswith("postgres://"):
        server.kill()
        pytest.fail(f"pgserver did not start: {url!r} {server.stderr.read()}")
    yield url
    server.stdin.close()
    server.wait(timeout=60)


def test_a_postgres_gallery_equals_the_embedded_one(cli, app, galleries, postgres_url):
    by_cli, _, cli_reports, _ = galleries
    gallery = visage.Gallery(postgres_url, app)
    for name, files in PEOPLE.items():
        assert gallery.enrol(name, [photo(f) for f in files]) == cli_reports[name]
    assert sorted(identity["name"] for identity in gallery.list()) == sorted(PEOPLE)
    for query in QUERIES:
        got = gallery.search(photo(query), k=3)
        # the CLI on the same PostgreSQL gallery: the same store code, the same numbers
        same_search(got, cli_json(cli, "gallery", "search", photo(query), "--gallery", postgres_url, "--json", "-k", "3")["faces"])
        # the embedded gallery of the same people: pgvector's cosine in float, within 1e-5
        embedded = cli_json(cli, "gallery", "search", photo(query), "--gallery", by_cli, "--json", "-k", "3")["faces"]
        assert [f["decision"] for f in got] == [f["decision"] for f in embedded]
        for fa, fb in zip(got, embedded):
            assert [m["identity"] for m in fa["matches"]] == [m["identity"] for m in fb["matches"]]
            assert all(abs(ma["score"] - mb["score"]) < 1e-5 for ma, mb in zip(fa["matches"], fb["matches"]))


def test_an_unreachable_postgres_gallery_is_a_visage_error(app):
    # Port 9 (discard) on localhost has no PostgreSQL: the store's own
    # connection error comes back as visage.Error, not a crash.
    gallery = visage.Gallery("postgres://visage@127.0.0.1:9/visage", app)
    with pytest.raises(visage.Error, match="127.0.0.1|connect|database|Postgres|postgres"):
        gallery.search(photo("biden_1.jpg"))
    with pytest.raises(visage.Error):
        gallery.enrol("biden", photo("biden_1.jpg"))
