#!/usr/bin/env bash
# RUSTC_WRAPPER for the fuzz build: adds libFuzzer's coverage instrumentation
# (SanitizerCoverage: 8-bit edge counters, the PC table, comparison tracing)
# to the crates that parse outside bytes — visage's own and the format
# crates under them — and leaves the numeric and runtime crates (burn, gemm,
# tokio, …) plain: instrumenting them would slow the build and every run
# without guiding the fuzzer anywhere it should go. Stable rustc takes these
# flags; no nightly, no RUSTC_BOOTSTRAP.
set -euo pipefail
rustc="$1"
shift
crate=""
prev=""
for arg in "$@"; do
  if [ "$prev" = "--crate-name" ]; then crate="$arg"; break; fi
  prev="$arg"
done
case "$crate" in
  visage_*|image|zune_jpeg|zune_core|png|image_webp|fdeflate|flate2|miniz_oxide|zip|safetensors|serde_json|toml|toml_parser|toml_datetime|serde_spanned|ndarray_npy|py_literal|multer|httparse|http|axum|axum_core|crc32fast|byteorder_lite)
    exec "$rustc" "$@" \
      -Cpasses=sancov-module \
      -Cllvm-args=-sanitizer-coverage-level=4 \
      -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
      -Cllvm-args=-sanitizer-coverage-pc-table \
      -Cllvm-args=-sanitizer-coverage-trace-compares
    ;;
  *)
    exec "$rustc" "$@"
    ;;
esac
