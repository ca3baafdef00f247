#!/usr/bin/env python3
"""Per-photo time of visage.FaceAnalysis.get against `visage analyze`, same run.

    python scripts/python/bench.py [--visage target/release/visage] [--runs 7] [PHOTO_DIR ...]

Needs the package installed in the running Python (for the numbers in
docs/python.md: the release wheel of `maturin build --release`, and the
release binary of `cargo build --release -p visage-cli`). Both sides run the
same photos (default: examples/photos and ../shared/data/faces_small), in
alternating runs after one warm-up each; the medians are compared.

- `visage analyze`: the pipeline's own wall time (`times.wall_s` of its
  --json; decoding overlaps the models on worker threads) divided by the
  photos, and the whole process's wall time per photo (model loading,
  grouping and the HTML report included).
- Python: one `FaceAnalysis` (loaded once, outside the timing), then
  `app.get(path)` on each photo in turn; the total divided by the photos.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import visage

REPO = Path(__file__).resolve().parents[2]
EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def photos_in(folders):
    return sorted(p for folder in folders for p in Path(folder).rglob("*") if p.suffix.lower() in EXTENSIONS)


def run_analyze(binary, folders, out):
    started = time.perf_counter()
    done = subprocess.run(
        [str(binary), "analyze", *map(str, folders), "--report", str(out / "report.html"), "--json", str(out / "summary.json")],
        capture_output=True,
        text=True,
    )
    process_s = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"visage analyze failed ({done.returncode}):\n{done.stderr}")
    summary = json.loads((out / "summary.json").read_text())
    return summary["times"]["wall_s"], process_s, summary["photos"], len(summary["faces"])


def run_python(app, files):
    faces = 0
    started = time.perf_counter()
    for path in files:
        faces += len(app.get(path))
    return time.perf_counter() - started, faces


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path, default=[REPO / "examples" / "photos", REPO.parent / "shared" / "data" / "faces_small"])
    parser.add_argument("--visage", type=Path, default=REPO / "target" / "release" / "visage")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    missing = [f for f in [args.visage, *args.folders] if not f.exists()]
    if missing:
        sys.exit(f"missing: {', '.join(map(str, missing))}")
    files = photos_in(args.folders)
    app = visage.FaceAnalysis()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run_analyze(args.visage, args.folders, out)  # warm-up: page cache, ONNX Runtime in the cache
        run_python(app, files)
        cli_pipeline, cli_process, py_total = [], [], []
        for _ in range(args.runs):
            pipeline_s, process_s, photos, cli_faces = run_analyze(args.visage, args.folders, out)
            total_s, py_faces = run_python(app, files)
            if photos != len(files) or cli_faces != py_faces:
                sys.exit(f"different work: analyze {photos} photos / {cli_faces} faces, Python {len(files)} photos / {py_faces} faces")
            cli_pipeline.append(pipeline_s / photos)
            cli_process.append(process_s / photos)
            py_total.append(total_s / photos)
    cli_ms = statistics.median(cli_pipeline) * 1e3
    process_ms = statistics.median(cli_process) * 1e3
    py_ms = statistics.median(py_total) * 1e3
    print(f"{len(files)} photos, {py_faces} faces, {args.runs} alternating runs (medians); visage {visage.__version__}")
    print(f"visage analyze, pipeline wall time:   {cli_ms:7.2f} ms/photo")
    print(f"visage analyze, whole process:        {process_ms:7.2f} ms/photo")
    print(f"FaceAnalysis.get, one photo per call: {py_ms:7.2f} ms/photo")
    print(f"ratio get / analyze pipeline: {py_ms / cli_ms:.3f}; get / analyze process: {py_ms / process_ms:.3f}")


if __name__ == "__main__":
    main()
