#!/usr/bin/env bash
# Margin heads, forward + backward, visage against PyTorch CPU on identical
# inputs (both sides print the loss, so the bench also checks they agree).
# Installs PyTorch from PyPI into bench/backends/.venv on first use.
#   scripts/bench/heads.sh                       # both tools with 2 threads
#   THREADS=1 scripts/bench/heads.sh             # 1 thread each (fair on a loaded machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS="${THREADS:-2}"
bench/backends/install_torch.sh
cargo build --release -p visage-cli
RAYON_NUM_THREADS="$THREADS" ./target/release/visage bench heads \
    --classes "${CLASSES:-10000,100000}" --runs "${RUNS:-3}" \
    --torch-threads "$THREADS" --torch-python bench/backends/.venv/bin/python
