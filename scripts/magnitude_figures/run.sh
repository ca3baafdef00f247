#!/usr/bin/env bash
# Regenerates the MagFace figures quoted in docs/quality.md: the mean face per
# magnitude bin and magnitude against centrality in the cluster, through
# `visage eval magnitude-figures`, on
#   1. examples/photos (clusters: the persons visage analyze forms);
#   2. shared/data/faces_dev photos/ + verify/ (clusters: the persons formed);
#   3. the same photos with the true identities as clusters: each photo's
#      largest face gets its folder's identity, any other face -1 (none).
#
#   scripts/magnitude_figures/run.sh [OUT_DIR]      (default: target/magnitude-figures)
#
# Each run writes OUT_DIR/<name>/{mean_faces.png, magnitude_centrality.png,
# magnitude_figures.json, table.txt}. VISAGE_BIN=<path> uses that binary
# instead of building target/release/visage (the numbers do not depend on
# the build profile). Needs python3 (standard library only) for step 3.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/target/magnitude-figures}"
dev="${FACES_DEV:-$root/../shared/data/faces_dev}"
cd "$root"
if [ -n "${VISAGE_BIN:-}" ]; then
  visage="$VISAGE_BIN"
else
  cargo build --release -p visage-cli
  visage="$root/target/release/visage"
fi

run() { # name, then the arguments of `visage eval magnitude-figures`
  local name="$1"; shift
  mkdir -p "$out/$name"
  "$visage" eval magnitude-figures "$@" --out "$out/$name" | tee "$out/$name/table.txt"
}

run examples examples/photos
run faces_dev "$dev/photos" "$dev/verify"
python3 - "$out/faces_dev/magnitude_figures.json" "$out/faces_dev_truth_labels.txt" <<'PY'
import json, os, sys
faces = json.load(open(sys.argv[1]))["faces"]
area = lambda f: (f["bbox"][2] - f["bbox"][0]) * (f["bbox"][3] - f["bbox"][1])
largest = {}
for i, f in enumerate(faces):
    if f["file"] not in largest or area(f) > area(faces[largest[f["file"]]]):
        largest[f["file"]] = i
identities = sorted({os.path.basename(os.path.dirname(f["file"])) for f in faces})
with open(sys.argv[2], "w") as labels:
    for i, f in enumerate(faces):
        identity = os.path.basename(os.path.dirname(f["file"]))
        labels.write(f"{identities.index(identity) if largest[f['file']] == i else -1}\n")
PY
run faces_dev_truth "$dev/photos" "$dev/verify" --labels "$out/faces_dev_truth_labels.txt"
