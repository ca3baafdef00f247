#!/usr/bin/env bash
# Sub-centre cleaning measured on labels flipped on purpose (docs/clean.md):
# for 0, 10, 20, 30, 40 % flipped digit labels, a subcenter run + `visage clean`
# (precision/recall of the drops) and ArcFace runs on the raw and the cleaned
# data (held-out verification accuracy). Writes what docs/clean.md shows:
# docs/clean/results.json, the two charts and the class-3 montage. Run from
# anywhere; needs `cargo build --release -p visage-cli` first. FRACTIONS=0.2
# runs one level; extra arguments go to the demo (e.g. --device cuda with a
# CUDA build).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
visage="${VISAGE:-target/release/visage}"
out="${OUT:-runs/clean-noise}"
mkdir -p docs/clean
"$visage" clean noise-demo \
    --config examples/train/digits_subcenter.toml \
    --heldout examples/digits/heldout \
    --fractions "${FRACTIONS:-0,0.1,0.2,0.3,0.4}" --seed 1 \
    --out "$out" \
    --detection-plot docs/clean/detection.svg \
    --verification-plot docs/clean/verification.svg \
    "$@"
# The numbers docs/clean.md quotes, and the montage it shows.
cp "$out/results.json" docs/clean/results.json
montage="$out/noise-10/cleaned/montages/3.png"
if [ -f "$montage" ]; then cp "$montage" docs/clean/dropped_class3_noise10.png; fi
