#!/usr/bin/env bash
# Scaling of `visage train --nodes N` on this machine: N = 1, 2, 4 processes
# of one worker each on 127.0.0.1, the same run (the digits ArcFace network
# of examples/train/digits_arcface.toml, batch 64, 2 epochs = 44 steps), plus
# the same run as one plain process. Prints, per layout, the median images/s
# of node 0's metrics.csv (the whole batch over every node, per step time),
# each node's mean communication time per step (time inside the all-reduce,
# waiting for the slowest node included) and the wall time.
#
#   scripts/multinode/scaling.sh [path/to/visage]   (default target/release/visage)
#
# docs/multinode.md quotes one run of it; the machine's other load is part of
# what it measures (`uptime` is printed).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
visage=${1:-$root/target/release/visage}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

config() { # name
  cat > "$work/$1.toml" <<TOML
out_dir = "$1"
epochs = 2
batch_size = 64
seed = 2048
[backbone]
arch = "iresnet18"
embedding_size = 64
blocks_per_stage = [1, 1, 1, 1]
stage_widths = [16, 16, 32, 32]
stem_width = 16
input_size = 32
[head]
kind = "arcface"
s = 32.0
m = 0.5
[data]
source = "$root/examples/digits/train"
threads = 2
flip = false
[checkpoint]
every_steps = 1000
keep = 1
TOML
}

median_images_per_s() { # metrics.csv; step 0 (start-up) left out
  tail -n +3 "$1" | cut -d, -f7 | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "visage: $visage"
echo "machine: $(nproc) cores; $(uptime | sed 's/.*load/load/')"
printf '%-22s %10s %34s %8s\n' layout "images/s" "communication ms/step (per node)" "wall s"

config plain
start=$(date +%s.%N)
(cd "$work" && "$visage" train --config plain.toml 2>/dev/null)
end=$(date +%s.%N)
printf '%-22s %10.1f %34s %8.1f\n' "1 process, no nodes" "$(median_images_per_s "$work/plain/metrics.csv")" "-" "$(echo "$end - $start" | bc)"

port=29650
for nodes in 1 2 4; do
  name="nodes$nodes"
  config "$name"
  start=$(date +%s.%N)
  pids=()
  for ((rank = 0; rank < nodes; rank++)); do
    (cd "$work" && "$visage" train --config "$name.toml" --nodes "$nodes" --node-rank "$rank" \
      --coordinator "127.0.0.1:$port" --timeout-s 120 > /dev/null 2> "$name.$rank.err") &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  end=$(date +%s.%N)
  comm=$(for ((rank = 0; rank < nodes; rank++)); do
    sed -n 's/.*communication \([0-9.]*\) ms per step.*/\1/p' "$work/$name.$rank.err"
  done | paste -sd/)
  printf '%-22s %10.1f %34s %8.1f\n' "$nodes x 1 worker" "$(median_images_per_s "$work/$name/metrics.csv")" "$comm" "$(echo "$end - $start" | bc)"
  port=$((port + 10))
done
