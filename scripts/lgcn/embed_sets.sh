#!/usr/bin/env bash
# Embeds the shared real photo sets with visage's default recogniser (largest
# face per photo) and writes one label per row (the photo's identity folder):
#   $OUT/faces.npy, faces.labels   ../shared/data/faces (22 people, 83 photos; _multi left out)
#   $OUT/dev.npy,   dev.labels     ../shared/data/faces_dev photos/ + verify/ (34 people, 292 photos)
# Usage: scripts/lgcn/embed_sets.sh OUT_DIR   (VISAGE: the binary, default target/release/visage;
#        SHARED: the shared data, default ../shared)
set -euo pipefail
out=${1:?usage: embed_sets.sh OUT_DIR}
visage=${VISAGE:-target/release/visage}
shared=${SHARED:-../shared}
mkdir -p "$out"
labels() { # index CSV -> integer label per row, numbered by first appearance of the identity folder
  tail -n +2 "$1" | awk -F, '{n = split($1, p, "/"); id = p[n - 1]; if (!(id in m)) m[id] = k++; print m[id]}'
}
faces_dirs=()
for d in "$shared"/data/faces/*/; do [[ $(basename "$d") == _multi ]] || faces_dirs+=("$d"); done
"$visage" embed --max-faces 1 --strict --out "$out/faces.npy" --index "$out/faces.csv" "${faces_dirs[@]}"
labels "$out/faces.csv" > "$out/faces.labels"
"$visage" embed --max-faces 1 --strict --out "$out/dev.npy" --index "$out/dev.csv" "$shared/data/faces_dev/photos" "$shared/data/faces_dev/verify"
labels "$out/dev.csv" > "$out/dev.labels"
