#!/usr/bin/env bash
# Reproduces docs/benchmarks.md, section "Training backend choice (burn)":
# installs PyTorch into .venv, builds one bench binary per burn backend and
# times the IResNet-18 training step for each backend and batch size.
#
#   bench/backends/run.sh                      # everything (~30 min on 2 cores)
#   BACKENDS="torch flex" BATCHES=8 bench/backends/run.sh
#   CHECK_CUDA=1 bench/backends/run.sh         # also build `cuda` + no-GPU probe
#   CHECK_CPU=1 bench/backends/run.sh          # also try `cpu` (needs network to GitHub)
#
# Builds and runs are niced (the machine is shared) and run one at a time.
set -euo pipefail
cd "$(dirname "$0")"

BACKENDS="${BACKENDS:-torch flex flex-fast flex-v4 tch}"
BATCHES="${BATCHES:-8 32}"
WARMUP="${WARMUP:-2}"
STEPS="${STEPS:-5}"
mkdir -p results target

./install_torch.sh
VENV="$PWD/.venv"
TORCH_LIB="$("$VENV/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
# tch (torch-sys 0.22.0) takes libtorch from this venv instead of downloading it.
export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" LIBTORCH_USE_PYTORCH=1
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

build() { # feature
    local start=$SECONDS
    if nice -n 10 cargo build --release --features "$1" >"results/build-$1.log" 2>&1; then
        cp target/release/bench-backends "target/bench-$1"
        echo "build $1: ok in $((SECONDS - start)) s (incremental)"
    else
        echo "build $1: FAILED after $((SECONDS - start)) s, see results/build-$1.log"
        grep -E '^error|downloading' "results/build-$1.log" | head -5 || true
        return 1
    fi
}

for be in $BACKENDS; do
    [ "$be" = torch ] || build "$be"
done
if [ -n "${CHECK_CPU:-}" ]; then build cpu || true; fi
if [ -n "${CHECK_CUDA:-}" ] && build cuda; then
    echo "cuda probe without a GPU (expect a caught panic, exit code 3):"
    ./target/bench-cuda --batch 2 --warmup 0 --steps 1 >results/cuda-probe.txt 2>&1 || echo "exit code $?"
    grep -E 'panicked|DEVICE INIT' results/cuda-probe.txt | cut -c1-160
fi

for b in $BATCHES; do
    for be in $BACKENDS; do
        out="results/$be-b$b.txt"
        echo "== $be batch $b ($(cut -d' ' -f1-3 /proc/loadavg) load before)" | tee "$out"
        if [ "$be" = torch ]; then
            nice -n 10 "$VENV/bin/python" torch_step.py --batch "$b" --warmup "$WARMUP" --steps "$STEPS" --threads 2 >>"$out" 2>&1
        else
            nice -n 10 "./target/bench-$be" --batch "$b" --warmup "$WARMUP" --steps "$STEPS" >>"$out" 2>&1
        fi
        echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out"
        grep RESULT "$out"
    done
done
