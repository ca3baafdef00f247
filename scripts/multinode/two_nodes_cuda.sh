#!/usr/bin/env bash
# The two-node equality check of crates/visage-cli/tests/multinode_cli.rs on
# a GPU machine: one process with two workers, then two processes
# (`--nodes 2`) of one worker each on 127.0.0.1, both with `--device cuda`;
# the loss of every step must be the same in both metrics.csv files.
#
#   scripts/multinode/two_nodes_cuda.sh
#
# Needs the CUDA toolkit (a `--features cuda` build) and at least one GPU;
# with two or more, the one-process run gives each worker its own GPU and
# each node runs on the GPU of its --device. Not run in CI, and — as
# docs/multinode.md says — not run at all so far: no GPU was available when
# it was written.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --release -p visage-cli --features cuda
visage=$root/target/release/visage
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gpus=$(nvidia-smi -L | wc -l)
echo "GPUs: $gpus"

config() { # name workers
  cat > "$work/$1.toml" <<TOML
out_dir = "$1"
epochs = 2
batch_size = 64
grad_clip_norm = 5.0
[backbone]
arch = "iresnet18"
embedding_size = 8
blocks_per_stage = [1, 1, 1, 1]
stage_widths = [4, 4, 4, 4]
stem_width = 4
input_size = 32
[head]
kind = "arcface"
s = 16.0
m = 0.2
[data]
source = "$root/examples/digits/heldout"
flip = false
[parallel]
workers = $2
TOML
}

config single 2
(cd "$work" && "$visage" train --config single.toml --device cuda:0)
config nodes 1
second=cuda:$(( gpus > 1 ? 1 : 0 ))
(cd "$work" && "$visage" train --config nodes.toml --device cuda:0 --nodes 2 --node-rank 0 --coordinator 127.0.0.1:29500 --timeout-s 120) &
node0=$!
(cd "$work" && "$visage" train --config nodes.toml --device "$second" --nodes 2 --node-rank 1 --coordinator 127.0.0.1:29500 --timeout-s 120)
wait "$node0"

cut -d, -f4 "$work/single/metrics.csv" > "$work/single.loss"
cut -d, -f4 "$work/nodes/metrics.csv" > "$work/nodes.loss"
paste -d' ' "$work/single.loss" "$work/nodes.loss"
if cmp -s "$work/single.loss" "$work/nodes.loss"; then
  echo "OK: two nodes on cuda take the steps of one process with two workers (loss per step, 6 decimals)"
else
  echo "DIFFERENT: compare the columns above (the GPU's reductions need not run in the same order in both layouts)"
  exit 1
fi
