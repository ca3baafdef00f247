"""Shared fixtures: the `visage` binary whose outputs the package must equal,
the photos, and one FaceAnalysis for the whole session.

The binary is $VISAGE_BIN (default: target/debug/visage of this repository);
the PostgreSQL gallery test starts a server with $VISAGE_PGSERVER (default:
target/debug/examples/pgserver). A missing binary or photo folder fails the
tests that need it; nothing is skipped.
"""

import csv
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import visage

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "examples" / "photos"
FACES_SMALL = REPO.parent / "shared" / "data" / "faces_small"


def image_files(folder):
    """Image files under folder, sorted as the command line expands a folder."""
    found = [p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp", ".bmp"}]
    return sorted(found)


@pytest.fixture(scope="session")
def visage_bin():
    path = Path(os.environ.get("VISAGE_BIN", REPO / "target" / "debug" / "visage"))
    if not path.is_file():
        pytest.fail(f"the visage binary {path} does not exist: build it (cargo build -p visage-cli) or set VISAGE_BIN")
    return path


@pytest.fixture(scope="session")
def cli(visage_bin):
    """Runs the binary; returns its stdout, failing the test on a non-zero exit."""

    def run(*args, expect=0):
        done = subprocess.run([str(visage_bin), *map(str, args)], capture_output=True, text=True, cwd=REPO)
        assert done.returncode == expect, f"visage {' '.join(map(str, args))}: exit {done.returncode}\n{done.stderr}"
        return done.stdout

    return run


@pytest.fixture(scope="session")
def photos():
    files = image_files(PHOTOS)
    if len(files) != 19:
        pytest.fail(f"expected the 19 bundled photos in {PHOTOS}, found {len(files)}")
    return files


@pytest.fixture(scope="session")
def faces_small():
    if not FACES_SMALL.is_dir():
        pytest.fail(f"{FACES_SMALL} is missing: the tests need ../shared/data beside the repository")
    files = image_files(FACES_SMALL)
    if len(files) < 80:
        pytest.fail(f"expected the 90 photos of {FACES_SMALL}, found {len(files)}")
    return files


@pytest.fixture(scope="session")
def app():
    return visage.FaceAnalysis()


def embed_with_cli(cli, tmp_path, inputs, *options):
    """`visage embed INPUTS --out x.npy --index x.csv OPTIONS`: {file: [(csv row, unit embedding)]} in the CLI's face order."""
    out, index = tmp_path / "x.npy", tmp_path / "x.csv"
    cli("embed", *inputs, "--out", out, "--index", index, *options)
    rows = list(csv.DictReader(index.open()))
    matrix = np.load(out)
    assert matrix.shape[0] == len(rows) > 0
    by_file = {}
    for row, embedding in zip(rows, matrix):
        by_file.setdefault(row["file"], []).append((row, embedding))
    return by_file


def cli_json(cli, *args):
    return json.loads(cli(*args))
