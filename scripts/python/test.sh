#!/usr/bin/env bash
# The Python package as a user gets it: a fresh virtual environment
# (target/python-venv), `pip install ./python`, then the pytest suite of
# python/tests against the `visage` binary (VISAGE_BIN, default
# target/debug/visage) and, for the PostgreSQL gallery, visage-lab's
# pgserver example (VISAGE_PGSERVER, default target/debug/examples/pgserver);
# `cargo test --workspace` builds both.
#
# In CI the wheel is built with the workspace's dev profile into the
# workspace's target directory, so it reuses the debug artifacts the test
# build left (maturin's PEP 517 backend passes MATURIN_PEP517_ARGS to cargo);
# only the crates whose features differ in a build of visage-python alone,
# pyo3/numpy and the package itself are compiled. Measured on 2 cores:
# about 2 minutes after `cargo test --workspace`, 25 s when nothing changed
# (docs/python.md). Set VISAGE_PYTHON_PROFILE=release for an optimised wheel.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"

python="${PYTHON:-python3}"
venv="$repo/target/python-venv"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
export MATURIN_PEP517_ARGS="--profile ${VISAGE_PYTHON_PROFILE:-dev}"
export VISAGE_BIN="${VISAGE_BIN:-$repo/target/debug/visage}"
export VISAGE_PGSERVER="${VISAGE_PGSERVER:-$repo/target/debug/examples/pgserver}"

for needed in "$VISAGE_BIN" "$VISAGE_PGSERVER"; do
    if [ ! -x "$needed" ]; then
        echo "scripts/python/test.sh: $needed does not exist: run cargo test --workspace (or cargo build -p visage-cli; cargo build -p visage-lab --example pgserver) first" >&2
        exit 1
    fi
done

echo "== fresh venv $venv"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip

echo "== pip install ./python ($MATURIN_PEP517_ARGS)"
"$venv/bin/python" -m pip install ./python

echo "== pytest python/tests (VISAGE_BIN=$VISAGE_BIN)"
# mypy: tests/test_stubs.py runs its stubtest on the installed package.
"$venv/bin/python" -m pip install --quiet pytest numpy mypy
# Run from the repository root with the installed package: python/ itself is
# not on sys.path, so `import visage` is the installed wheel, not the sources.
"$venv/bin/pytest" -q python/tests "$@"
