#!/usr/bin/env bash
# visage-eval vs scikit-learn on the same generated data, in one run:
#   ROC/AUC/EER/TAR@FAR on N_PAIRS scores (default 1e7),
#   DBSCAN (cosine) on N_DBSCAN x 512 embeddings (default 1e5),
#   average-linkage AHC (cosine) on N_AHC x 512 embeddings (default 2e4).
# Each side runs in its own process under /usr/bin/time -v (peak RSS);
# the reported seconds are the computation only (data loading excluded on both
# sides). Prints both results' agreement, the speed ratios and peak memory.
#
#   bash scripts/bench/eval_vs_sklearn.sh            # full size
#   N_PAIRS=1000000 N_DBSCAN=20000 N_AHC=5000 bash scripts/bench/eval_vs_sklearn.sh   # quick
set -euo pipefail
cd "$(dirname "$0")/../.."
N_PAIRS=${N_PAIRS:-10000000}
N_DBSCAN=${N_DBSCAN:-100000}
N_AHC=${N_AHC:-20000}
WORK=${WORK:-$(mktemp -d /tmp/visage-eval-bench.XXXXXX)}
mkdir -p "$WORK"
echo "work dir: $WORK"

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
python3 -c "import sklearn, scipy, numpy" 2>/dev/null || python3 -m pip install --quiet scikit-learn numpy scipy
nice -n 10 cargo build --release -q -p visage-eval --example eval_bench
BIN=$(pwd)/target/release/examples/eval_bench

cat > "$WORK/sk.py" <<'PY'
import json, sys, time
import numpy as np

def main():
    task = sys.argv[1]
    if task == "gen":
        n_pairs, n_db, n_ahc, out = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
        rng = np.random.default_rng(7)
        n_gen = n_pairs // 10
        scores = np.concatenate([rng.normal(0.5, 0.15, n_gen), rng.normal(0.0, 0.1, n_pairs - n_gen)])
        labels = np.concatenate([np.ones(n_gen, np.uint8), np.zeros(n_pairs - n_gen, np.uint8)])
        order = rng.permutation(n_pairs)
        np.save(out + "/scores.npy", scores[order]); np.save(out + "/labels.npy", labels[order])
        for name, n, per_id in (("db", n_db, 45), ("ahc", n_ahc, 50)):
            ids = n // per_id
            centres = rng.normal(size=(ids, 512)).astype(np.float32)
            centres /= np.linalg.norm(centres, axis=1, keepdims=True)
            n_noise = n // 10
            owner = rng.integers(0, ids, n - n_noise)
            x = np.empty((n, 512), np.float32)
            x[: n - n_noise] = centres[owner] + 0.8 * rng.normal(size=(n - n_noise, 512)).astype(np.float32) / np.sqrt(512)
            x[n - n_noise:] = rng.normal(size=(n_noise, 512)).astype(np.float32)
            x *= rng.uniform(10, 30, (n, 1)).astype(np.float32)
            np.save(out + "/%s.npy" % name, x[rng.permutation(n)])
        return
    if task == "roc":
        from sklearn.metrics import roc_curve, auc
        s, y = np.load(sys.argv[2]), np.load(sys.argv[3])
        t, c = time.perf_counter(), time.process_time()
        fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
        res = {"auc": float(auc(fpr, tpr)), "eer": float(np.min(np.maximum(fpr, 1 - tpr))),
               "tar_at_far": [{"far": f, "tar": float(np.max(tpr[fpr <= f]))} for f in [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]]}
        secs, cpu = time.perf_counter() - t, time.process_time() - c
        json.dump(res, open(sys.argv[4], "w"))
        print(json.dumps({"task": "roc", "n": len(s), "seconds": round(secs, 4), "cpu_seconds": round(cpu, 2)}))
    elif task == "dbscan":
        from sklearn.cluster import DBSCAN
        x = np.load(sys.argv[2])
        t, c = time.perf_counter(), time.process_time()
        labels = DBSCAN(eps=float(sys.argv[3]), min_samples=int(sys.argv[4]), metric="cosine").fit_predict(x)
        secs, cpu = time.perf_counter() - t, time.process_time() - c
        np.savetxt(sys.argv[5], labels, fmt="%d")
        print(json.dumps({"task": "dbscan", "n": len(x), "seconds": round(secs, 4), "cpu_seconds": round(cpu, 2)}))
    elif task == "ahc":
        from sklearn.cluster import AgglomerativeClustering
        x = np.load(sys.argv[2])
        t, c = time.perf_counter(), time.process_time()
        labels = AgglomerativeClustering(n_clusters=None, distance_threshold=float(sys.argv[3]), metric="cosine", linkage="average").fit_predict(x)
        secs, cpu = time.perf_counter() - t, time.process_time() - c
        np.savetxt(sys.argv[4], labels, fmt="%d")
        print(json.dumps({"task": "ahc", "n": len(x), "seconds": round(secs, 4), "cpu_seconds": round(cpu, 2)}))
    elif task == "compare":
        kind, a, b = sys.argv[2], sys.argv[3], sys.argv[4]
        if kind == "roc":
            ra, rb = json.load(open(a)), json.load(open(b))
            diff = max([abs(ra["auc"] - rb["auc"]), abs(ra["eer"] - rb["eer"])] +
                       [abs(x["tar"] - y["tar"]) for x, y in zip(ra["tar_at_far"], rb["tar_at_far"])])
            print("max |difference| of AUC/EER/TAR@FAR: %.3g" % diff)
        else:
            from sklearn.metrics import adjusted_rand_score
            la, lb = np.loadtxt(a, dtype=int), np.loadtxt(b, dtype=int)
            same_noise = bool(np.array_equal(la < 0, lb < 0))
            pairs = set(zip(la.tolist(), lb.tolist()))
            identical = same_noise and len(pairs) == len(set(la)) == len(set(lb))
            print("clusters %d vs %d, noise %d vs %d, identical partition: %s, ARI %.6f"
                  % (len(set(la[la >= 0])), len(set(lb[lb >= 0])), (la < 0).sum(), (lb < 0).sum(), identical, adjusted_rand_score(la, lb)))

main()
PY

echo "generating data (pairs $N_PAIRS, dbscan $N_DBSCAN x 512, ahc $N_AHC x 512)…"
python3 "$WORK/sk.py" gen "$N_PAIRS" "$N_DBSCAN" "$N_AHC" "$WORK"

# run NAME SIDE CMD… : records seconds (from the JSON line) and peak RSS
run() {
  local name=$1 side=$2; shift 2
  /usr/bin/time -v -o "$WORK/time_${name}_${side}.txt" "$@" > "$WORK/out_${name}_${side}.txt"
  SECS[${name}_${side}]=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['seconds'])" "$WORK/out_${name}_${side}.txt")
  CPU[${name}_${side}]=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['cpu_seconds'])" "$WORK/out_${name}_${side}.txt")
  RSS[${name}_${side}]=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$WORK/time_${name}_${side}.txt")
  echo "  $name/$side: ${SECS[${name}_${side}]} s wall, ${CPU[${name}_${side}]} s CPU, peak ${RSS[${name}_${side}]} MiB"
}
declare -A SECS CPU RSS
EPS=0.5; MINS=5; THRESH=0.6
echo "ROC…";    run roc visage "$BIN" roc "$WORK/scores.npy" "$WORK/labels.npy" "$WORK/roc_visage.json"
                run roc sklearn python3 "$WORK/sk.py" roc "$WORK/scores.npy" "$WORK/labels.npy" "$WORK/roc_sklearn.json"
echo "DBSCAN…"; run dbscan visage "$BIN" dbscan "$WORK/db.npy" $EPS $MINS "$WORK/db_visage.txt"
                run dbscan sklearn python3 "$WORK/sk.py" dbscan "$WORK/db.npy" $EPS $MINS "$WORK/db_sklearn.txt"
echo "AHC…";    run ahc visage "$BIN" ahc "$WORK/ahc.npy" $THRESH "$WORK/ahc_visage.txt"
                run ahc sklearn python3 "$WORK/sk.py" ahc "$WORK/ahc.npy" $THRESH "$WORK/ahc_sklearn.txt"

echo
echo "agreement:"
echo -n "  ROC:    "; python3 "$WORK/sk.py" compare roc "$WORK/roc_visage.json" "$WORK/roc_sklearn.json"
echo -n "  DBSCAN: "; python3 "$WORK/sk.py" compare labels "$WORK/db_visage.txt" "$WORK/db_sklearn.txt"
echo -n "  AHC:    "; python3 "$WORK/sk.py" compare labels "$WORK/ahc_visage.txt" "$WORK/ahc_sklearn.txt"
echo
printf "%-30s %10s %10s %7s %10s %10s %12s %12s\n" task "visage s" "sklearn s" ratio "visage CPU" "sklearn CPU" "visage MiB" "sklearn MiB"
for t in roc dbscan ahc; do
  case $t in roc) label="ROC+TAR@FAR ($N_PAIRS pairs)";; dbscan) label="DBSCAN ($N_DBSCAN x 512)";; ahc) label="AHC avg ($N_AHC x 512)";; esac
  ratio=$(python3 -c "print('%.1fx' % (float('${SECS[${t}_sklearn]}') / max(float('${SECS[${t}_visage]}'), 1e-9)))")
  printf "%-30s %10s %10s %7s %10s %10s %12s %12s\n" "$label" "${SECS[${t}_visage]}" "${SECS[${t}_sklearn]}" "$ratio" "${CPU[${t}_visage]}" "${CPU[${t}_sklearn]}" "${RSS[${t}_visage]}" "${RSS[${t}_sklearn]}"
done
echo "(seconds: computation only, wall clock; CPU: user+system seconds of that computation; MiB: peak RSS of the whole process)"
echo "(load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); cores: $(nproc); sklearn $(python3 -c 'import sklearn; print(sklearn.__version__)'), numpy $(python3 -c 'import numpy; print(numpy.__version__)'))"
