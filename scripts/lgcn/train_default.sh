#!/usr/bin/env bash
# Reproduces the bundled L-GCN model (crates/visage-train/models/lgcn_default.safetensors)
# and the held-out fixture its test clusters (crates/visage-train/tests/fixtures/):
# trained, seed 0, on faces_dev's embeddings (34 people, 292 photos) plus 240
# synthetic and mixed scenes fitted to them; ../shared/data/faces (22 other
# people) stays out of training and is the held-out set.
# Usage (from the repository root, after `cargo build --release -p visage-cli`):
#   scripts/lgcn/train_default.sh
set -euo pipefail
visage=${VISAGE:-target/release/visage}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
VISAGE=$visage scripts/lgcn/embed_sets.sh "$work"
"$visage" cluster train-lgcn --embeddings "$work/dev.npy" --labels "$work/dev.labels" --seed 0 \
  --trained-on "faces_dev photos+verify (292 faces, 34 people; default recogniser) + synthetic mixtures fitted to them, seed 0" \
  --out crates/visage-train/models/lgcn_default.safetensors --report "$work/report.json"
mkdir -p crates/visage-train/tests/fixtures
cp "$work/faces.npy" crates/visage-train/tests/fixtures/lgcn_heldout_faces.npy
cp "$work/faces.labels" crates/visage-train/tests/fixtures/lgcn_heldout_faces.labels
cat "$work/report.json"
