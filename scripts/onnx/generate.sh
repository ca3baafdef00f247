#!/usr/bin/env bash
# Regenerates crates/visage-nn/src/onnx/onnx_pb.rs (prost types) from
# scripts/onnx/onnx_subset.proto. The build itself needs neither protoc nor a
# build script: the generated file is committed, and this is run by hand when
# the subset changes.
#
#   scripts/onnx/generate.sh [path/to/onnx.proto]
#
# With the full onnx.proto (e.g. from the PyPI wheel: `pip download onnx
# --no-deps`, then unzip onnx/onnx.proto), the generator first checks that every
# message, field and enum value of the subset has upstream's number, label,
# type and oneof, and stops if one differs. protoc comes from the
# protoc-bin-vendored crate; prost-build's version matches the workspace's prost.
#
#   scripts/onnx/generate.sh --check [path/to/onnx.proto]
#
# generates into a temporary file and fails if it differs from the committed one.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
check=0
if [[ "${1:-}" == "--check" ]]; then
    check=1
    shift
fi
full=()
if [[ $# -gt 0 ]]; then
    full=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")")
fi
target="$root/crates/visage-nn/src/onnx/onnx_pb.rs"
output="$target"
if [[ $check == 1 ]]; then
    output="$(mktemp --suffix=.rs)"
    trap 'rm -f "$output"' EXIT
fi
# Its own target folder: the generator never takes the workspace's build lock.
export CARGO_TARGET_DIR="${VISAGE_ONNX_GENERATOR_TARGET:-${TMPDIR:-/tmp}/visage-onnx-generator-target}"
cargo run --quiet --release --manifest-path "$here/generator/Cargo.toml" -- "$here/onnx_subset.proto" "$output" "${full[@]}"
# The workspace's rustfmt.toml (max_width 150) applies, so `cargo fmt --all --check` stays clean.
rustfmt --edition 2021 --config-path "$root/rustfmt.toml" "$output"
if [[ $check == 1 ]]; then
    if ! diff -u "$target" "$output"; then
        echo "error: $target is not what scripts/onnx/generate.sh generates; run it and commit the result" >&2
        exit 1
    fi
    echo "$target is up to date"
fi
