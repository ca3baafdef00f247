#!/usr/bin/env bash
# Sub-centre cleaning on real photos with a real pretrained model
# (docs/clean.md, "Real faces"): the Paddle ArcFace MobileFaceNet fine-tuned
# with the subcenter head (examples/train/faces_subcenter.toml) on the shared
# aligned crops, labels flipped on purpose. Runs the noise demo at the
# paper's 75° (10 %) and at 55° (20–40 %), then, for every level, the angle
# of every training sample to its class's dominant sub-centre (`visage clean`
# with a threshold of 0.001° drops, and so lists, all of them) scored as a
# detector of the flips (ROC AUC). Needs `cargo build --release -p visage-cli`
# and python3 (standard library only).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
visage="${VISAGE:-target/release/visage}"
out="${OUT:-runs/faces-clean}"
"$visage" train prepare-faces ../shared/data/reference/aligned --out runs/faces-subcenter/data --clean-only
"$visage" clean noise-demo --config examples/train/faces_subcenter.toml \
    --heldout runs/faces-subcenter/data/heldout --fractions 0,0.1 --out "$out/at75" "$@"
"$visage" clean noise-demo --config examples/train/faces_subcenter.toml \
    --heldout runs/faces-subcenter/data/heldout --fractions 0.2,0.3,0.4 --max-angle 55 --out "$out/at55" "$@"
for level in "$out"/at75/noise-* "$out"/at55/noise-*; do
    [ -f "$level/flipped.csv" ] || continue
    "$visage" clean --checkpoint "$level/subcenter-raw" --data "$level/data" --out "$level/all-angles" --max-angle 0.001 > /dev/null
    python3 - "$level" <<'PY'
import csv, sys
level = sys.argv[1]
flipped = {row["file"] for row in csv.DictReader(open(f"{level}/flipped.csv"))}
angles = [(float(r["angle_deg"]), r["sample"].rsplit("/", 1)[-1] in flipped)
          for r in csv.DictReader(open(f"{level}/all-angles/dropped.csv"))]
pos = [a for a, f in angles if f]
neg = [a for a, f in angles if not f]
if pos and neg:
    auc = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    print(f"{level}: {len(pos)} flipped of {len(angles)}; angle AUC {auc:.3f}; "
          f"clean {min(neg):.1f}-{max(neg):.1f} deg, flipped {min(pos):.1f}-{max(pos):.1f} deg")
else:
    print(f"{level}: {len(pos)} flipped of {len(angles)}; clean {min(neg):.1f}-{max(neg):.1f} deg")
PY
done
