#!/usr/bin/env bash
# `visage eval roc` against pandas + scikit-learn, whole process from the
# same scores CSV (reading, ROC, AUC, EER, TAR@FAR, JSON out), in one run:
# RUNS alternating rounds (visage, then Python), the wall time of every
# process, the median of each side and the ratio of the medians with the
# spread of the per-round ratios.
#
#   bash scripts/bench/roc_csv_vs_pandas.sh                 # 10^7 pairs, 5 rounds
#   N_PAIRS=1000000 RUNS=3 bash scripts/bench/roc_csv_vs_pandas.sh
#
# The data: 10 % genuine N(0.5, 0.15), 90 % impostor N(0, 0.1), shuffled,
# written with 6 decimals (`%.6f`; 10^7 pairs ≈ 113 MB). The Python side
# (pandas 3.1.1, scikit-learn 1.9.1, numpy 2.4.6) goes into
# scripts/bench/.venv (ignored by git) on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
N_PAIRS=${N_PAIRS:-10000000}
RUNS=${RUNS:-5}
WORK=${WORK:-/tmp/visage-roc-csv-bench}
mkdir -p "$WORK"
VENV=scripts/bench/.venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import pandas, sklearn" 2>/dev/null ||
    "$VENV/bin/python" -m pip install --quiet pandas==3.1.1 scikit-learn==1.9.1 numpy==2.4.6
PY="$VENV/bin/python"
nice -n 10 cargo build --release -q -p visage-cli --bin visage
VISAGE=$(pwd)/target/release/visage

cat > "$WORK/roc_pandas.py" <<'PY'
import json, sys
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve, auc

frame = pd.read_csv(sys.argv[1])
fpr, tpr, _ = roc_curve(frame["label"].to_numpy(), frame["score"].to_numpy(), drop_intermediate=False)
print(json.dumps({"auc": float(auc(fpr, tpr)), "eer": float(np.min(np.maximum(fpr, 1 - tpr))),
                  "tar_at_far": [{"far": f, "tar": float(np.max(tpr[fpr <= f]))} for f in [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]]}))
PY

CSV="$WORK/scores_$N_PAIRS.csv"
if [ ! -s "$CSV" ]; then
    echo "writing $CSV …"
    "$PY" - "$N_PAIRS" "$CSV" <<'PY'
import sys
import numpy as np
import pandas as pd
n, out = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(7)
n_gen = n // 10
scores = np.concatenate([rng.normal(0.5, 0.15, n_gen), rng.normal(0.0, 0.1, n - n_gen)])
labels = np.concatenate([np.ones(n_gen, np.uint8), np.zeros(n - n_gen, np.uint8)])
order = rng.permutation(n)
pd.DataFrame({"score": scores[order], "label": labels[order]}).to_csv(out, index=False, float_format="%.6f")
PY
fi
echo "$CSV: $(stat -c %s "$CSV") bytes"
cat "$CSV" > /dev/null  # in the page cache for both sides

# seconds of wall time of one process, its stdout to $2
timed() {
    local out=$1; shift
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > "$out"
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
V=() P=()
for round in $(seq "$RUNS"); do
    v=$(timed "$WORK/visage.json" "$VISAGE" eval roc --scores "$CSV" --json)
    p=$(timed "$WORK/pandas.json" "$PY" "$WORK/roc_pandas.py" "$CSV")
    V+=("$v") P+=("$p")
    printf "round %d: visage %.3f s, pandas+sklearn %.3f s, ratio %.1fx (load %s)\n" "$round" "$v" "$p" "$(echo "$p / $v" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
done
"$PY" - "$WORK/visage.json" "$WORK/pandas.json" "${V[*]}" "${P[*]}" <<'PY'
import json, sys, statistics
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
diff = max([abs(a["auc"] - b["auc"]), abs(a["eer"] - b["eer"])] + [abs(x["tar"] - y["tar"]) for x, y in zip(a["tar_at_far"], b["tar_at_far"])])
v = [float(x) for x in sys.argv[3].split()]
p = [float(x) for x in sys.argv[4].split()]
ratios = [q / w for w, q in zip(v, p)]
print("max |difference| of AUC/EER/TAR@FAR: %.3g" % diff)
print("visage median %.3f s [%.3f-%.3f], pandas+sklearn median %.3f s [%.3f-%.3f]" % (statistics.median(v), min(v), max(v), statistics.median(p), min(p), max(p)))
print("ratio of medians %.1fx, per-round ratios %.1f-%.1fx" % (statistics.median(p) / statistics.median(v), min(ratios), max(ratios)))
PY
echo "(cores: $(nproc); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
