#!/usr/bin/env bash
# Every figure of the performance goals (issue 18) from one run, each side
# by side with its reference, one after another on the same machine:
#   - `visage bench train` for IResNet-18 b8, MobileFaceNet b64, IResNet-50 b32
#     against PyTorch CPU (speed and peak memory);
#   - `visage eval roc` from a 10^7-pair CSV against pandas + scikit-learn
#     (scripts/bench/roc_csv_vs_pandas.sh);
#   - ROC, DBSCAN and AHC against scikit-learn (scripts/bench/eval_vs_sklearn.sh);
#   - `visage bench embed` and `visage bench analyze` against onnxruntime-python
#     and the OpenCV + onnxruntime + scikit-learn pipeline (scripts/bench/infer.sh).
# Logs go to $OUT (default /tmp/visage-issue18-<time>), the summary lines to
# $OUT/summary.txt. Run it on a machine nothing else is using: the wall-time
# ratios are the goal's figures.
#
#   TORCH_PYTHON=/tmp/torchvenv/bin/python bash scripts/bench/issue18_one_run.sh
#   PARTS="train roc" bash scripts/bench/issue18_one_run.sh     # a subset
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/visage-issue18-$(date +%Y%m%d-%H%M%S)}
PARTS=${PARTS:-train roc eval infer}
TORCH_PYTHON=${TORCH_PYTHON:-/tmp/torchvenv/bin/python}
mkdir -p "$OUT"
echo "logs in $OUT"
note() { echo "$*" | tee -a "$OUT/summary.txt"; }
note "# $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
note "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
nice -n 10 cargo build --release -q -p visage-cli --bin visage

for part in $PARTS; do
    case "$part" in
        train)
            [ -x "$TORCH_PYTHON" ] || { echo "no PyTorch at $TORCH_PYTHON: python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.15.0" >&2; exit 2; }
            for spec in "iresnet18 8" "mobilefacenet 64" "iresnet50 32"; do
                set -- $spec
                target/release/visage bench train --arch "$1" --batch "$2" --runs "${TRAIN_RUNS:-3}" --torch-python "$TORCH_PYTHON" \
                    | tee "$OUT/train_$1.log"
                note "train $1 b$2: $(grep -E 's/step|speed|peak memory' "$OUT/train_$1.log" | tr -s ' ' | paste -sd';')"
            done ;;
        roc)
            RUNS=${ROC_RUNS:-5} bash scripts/bench/roc_csv_vs_pandas.sh | tee "$OUT/roc_csv.log"
            note "roc csv: $(grep -E 'ratio of medians|median|difference' "$OUT/roc_csv.log" | paste -sd';')" ;;
        eval)
            bash scripts/bench/eval_vs_sklearn.sh 2>&1 | tee "$OUT/eval.log"
            note "eval vs scikit-learn: see $OUT/eval.log"
            sed -n '/^agreement:/,$p' "$OUT/eval.log" >> "$OUT/summary.txt" ;;
        infer)
            bash scripts/bench/infer.sh 2>&1 | tee "$OUT/infer.log"
            note "infer: see $OUT/infer.log"
            grep -vE '^ *(Compiling|Finished|Blocking|Building)' "$OUT/infer.log" >> "$OUT/summary.txt" || true ;;
        *) echo "unknown part $part (train, roc, eval, infer)" >&2; exit 2 ;;
    esac
    note "load average after $part: $(cut -d' ' -f1-3 /proc/loadavg)"
done
cat "$OUT/summary.txt"
