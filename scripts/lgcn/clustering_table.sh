#!/usr/bin/env bash
# The clustering table of docs/clustering.md: k-means, AHC, DBSCAN and L-GCN on
# the shared real photo sets, by pairwise F, BCubed F and NMI. Each method's
# setting is chosen on one set and reported on the other (faces <-> faces_dev);
# k-means is given the true number of people (an oracle: it has no other stop).
# L-GCN "cross" models are trained (seed 0) on the other set + synthetic scenes;
# the bundled model is trained on faces_dev, so only its faces row is held out.
# Usage (repository root, release binary built): scripts/lgcn/clustering_table.sh > docs/clustering-table.md
set -euo pipefail
visage=${VISAGE:-target/release/visage}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
VISAGE=$visage scripts/lgcn/embed_sets.sh "$work" >&2
other() { [[ $1 == faces ]] && echo dev || echo faces; }
# pairwise F, BCubed F, NMI of a labels file against a set's truth
score() {
  "$visage" eval clusters --truth "$work/$1.labels" --pred "$2" --json |
    python3 -c 'import json, sys; d = json.load(sys.stdin); print("%.3f %.3f %.3f" % (d["pairwise_f"], d["bcubed_f"], d["nmi"]))'
}
pf() { score "$1" "$2" | cut -d' ' -f1; }
run() { # set, labels file, method args...
  local set=$1 out=$2; shift 2
  "$visage" cluster --input "$work/$set.npy" --output "$out" "$@" > /dev/null
}
best() { # set, flag, values...: the value with the best pairwise F on the set
  local set=$1 flag=$2; shift 2
  local best_value="" best_f=-1
  for v in "$@"; do
    run "$set" "$work/p.txt" "${method_args[@]}" "$flag" "$v"
    f=$(pf "$set" "$work/p.txt")
    if python3 -c "import sys; sys.exit(0 if $f > $best_f else 1)"; then best_f=$f; best_value=$v; fi
  done
  echo "$best_value"
}
name() { [[ $1 == faces ]] && echo "faces (22 people, 83 photos)" || echo "faces_dev (34 people, 292 photos)"; }
echo "| set (held out) | method | setting (chosen on the other set) | pairwise F | BCubed F | NMI |"
echo "|---|---|---|---|---|---|"
for set in faces dev; do
  tune=$(other "$set")
  k=$(sort -u "$work/$set.labels" | wc -l)
  run "$set" "$work/p.txt" --method kmeans --k "$k" --seed 0
  echo "| $(name "$set") | k-means | k = $k (true count) | $(score "$set" "$work/p.txt" | sed 's/ / | /g') |"
  for linkage in average complete single; do
    method_args=(--method ahc --linkage "$linkage")
    t=$(best "$tune" --threshold 0.3 0.35 0.4 0.45 0.5 0.55 0.6 0.65 0.7 0.75 0.8 0.85 0.9)
    run "$set" "$work/p.txt" "${method_args[@]}" --threshold "$t"
    echo "| $(name "$set") | AHC ($linkage) | distance $t | $(score "$set" "$work/p.txt" | sed 's/ / | /g') |"
  done
  method_args=(--method dbscan --min-samples 2)
  eps=$(best "$tune" --eps 0.3 0.35 0.4 0.45 0.5 0.55 0.6 0.65 0.7 0.75)
  run "$set" "$work/p.txt" "${method_args[@]}" --eps "$eps"
  echo "| $(name "$set") | DBSCAN | eps $eps, min-samples 2 | $(score "$set" "$work/p.txt" | sed 's/ / | /g') |"
  "$visage" cluster train-lgcn --embeddings "$work/$tune.npy" --labels "$work/$tune.labels" --seed 0 --out "$work/cross.safetensors" > /dev/null
  run "$set" "$work/p.txt" --method lgcn --model "$work/cross.safetensors"
  echo "| $(name "$set") | L-GCN, trained on $( [[ $tune == dev ]] && echo faces_dev || echo faces ) + synthetic | link threshold 0.5 | $(score "$set" "$work/p.txt" | sed 's/ / | /g') |"
  run "$set" "$work/p.txt" --method lgcn
  seen=$( [[ $set == dev ]] && echo " (its training set: not held out)" || echo "" )
  echo "| $(name "$set") | L-GCN, bundled model$seen | link threshold 0.5 | $(score "$set" "$work/p.txt" | sed 's/ / | /g') |"
done
