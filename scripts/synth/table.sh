#!/usr/bin/env bash
# Regenerates docs/synth.md's measured table ("Measured: the bundled model,
# five people"): `visage synth` on one photo each of the five people in
# examples/photos, 400 steps, at BatchNorm prior weights 1 (the default), 2
# and 0; each image checked by faceplugin's 512-d recogniser (cosine to its
# own target and to the other targets' faces) and by YuNet (`visage detect`:
# is a face found, and its score). Writes docs/synth/bn_weight_{1,2,0}.{json,png}
# and prints the table's rows.
#
# Needs ../shared/data/models (faceplugin_fr_feature_512d.onnx). About 5–8
# minutes per weight on 2 quiet cores (burn's flex backend).
#
# Usage: scripts/synth/table.sh [MODELS_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
MODELS=${1:-../shared/data/models}
WORK=${WORK:-target/synth-table}
cargo build --release -q -p visage-cli --bin visage
VISAGE=${CARGO_TARGET_DIR:-target}/release/visage
PHOTOS=(examples/photos/obama_1.jpg examples/photos/biden_1.jpg examples/photos/kit_harington_1.jpg
        examples/photos/rose_leslie_1.jpg examples/photos/alex_lacamoire_1.jpg)
mkdir -p "$WORK" docs/synth
for weight in 1 2 0; do
    out="$WORK/bn_weight_$weight"
    rm -rf "$out"
    "$VISAGE" synth "${PHOTOS[@]}" --out "$out" --steps 400 --bn-weight "$weight" \
        --check-with faceplugin_fr_feature_512d --models-dir "$MODELS" --seed 0
    # YuNet on each synthesised image (JSON lines, one per image)
    "$VISAGE" detect "$out"/synth_*.png --json > "$out/detect.jsonl" || true
    # the model's file name only (the run's cache path is machine-specific)
    python3 -c 'import json, os, sys; d = json.load(open(sys.argv[1])); d["model"] = os.path.basename(d["model"]); json.dump(d, open(sys.argv[2], "w"), indent=2); open(sys.argv[2], "a").write("\n")' \
        "$out/synth.json" "docs/synth/bn_weight_$weight.json"
    [ -f "$out/grid.png" ] && cp "$out/grid.png" "docs/synth/bn_weight_$weight.png"
done
python3 - "$WORK" <<'PY'
import json, os, sys
work = sys.argv[1]
runs = {}
for w in ("1", "2", "0"):
    d = os.path.join(work, f"bn_weight_{w}")
    synth = json.load(open(os.path.join(d, "synth.json")))
    found = []
    for line in open(os.path.join(d, "detect.jsonl")):
        line = line.strip()
        if not line:
            continue
        photo = json.loads(line)
        faces = photo.get("faces") or []
        if faces:
            found.append(max(f["score"] for f in faces))
    runs[w] = (synth["results"], found)
names = [os.path.splitext(os.path.basename(r["target"]))[0] for r in runs["1"][0]]
print("| target | cosine, making network | cosine under faceplugin | faceplugin, other targets' faces |")
print("|---|---|---|---|")
for i, name in enumerate(names):
    cell = lambda key: " / ".join(f"{runs[w][0][i][key]:.3f}" for w in ("1", "2", "0"))
    print(f"| {name} | {cell('cosine')} | {cell('check_cosine')} | {cell('check_cosine_others')} |")
def found(w):
    scores = runs[w][1]
    n = len(runs[w][0])
    if not scores:
        return f"0 of {n}"
    return f"{len(scores)} of {n} ({min(scores):.2f}–{max(scores):.2f})"
print("| YuNet finds a face (score) | " + " / ".join(found(w) for w in ("1", "2", "0")) + " | | |")
PY
