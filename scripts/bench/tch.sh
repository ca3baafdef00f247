#!/usr/bin/env bash
# The training step on the CPU three ways in one run: visage on burn's flex
# backend (the default build), visage on libtorch (`--features tch`,
# `--device torch`), and PyTorch itself. Installs PyTorch 2.9.0 from PyPI into
# bench/backends/.venv on first use; the `tch` build links that libtorch
# (LIBTORCH_USE_PYTORCH=1) and needs its lib folder at run time.
#   scripts/bench/tch.sh                          # IResNet-50, batch 32
#   ARCH=iresnet18 BATCH=8 scripts/bench/tch.sh
# Both builds share target/ (only burn and the crates above it differ); the
# tch binary is kept as target/release/visage-tch.
set -euo pipefail
cd "$(dirname "$0")/../.."
ARCH="${ARCH:-iresnet50}" BATCH="${BATCH:-32}" RUNS="${RUNS:-3}"
bench/backends/install_torch.sh
VENV="$PWD/bench/backends/.venv"
TORCH_LIB="$("$VENV/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
PATH="$VENV/bin:$PATH" LIBTORCH_USE_PYTORCH=1 cargo build --release -p visage-cli --features tch
cp target/release/visage target/release/visage-tch
cargo build --release -p visage-cli
target/release/visage bench train --arch "$ARCH" --batch "$BATCH" --runs "$RUNS" \
    --torch-python "$VENV/bin/python"
LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    target/release/visage-tch bench train --arch "$ARCH" --batch "$BATCH" --runs "$RUNS" --device torch \
    --torch-python "$VENV/bin/python"
