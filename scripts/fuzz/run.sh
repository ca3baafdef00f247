#!/usr/bin/env bash
# The fuzzing campaign: builds fuzz/ (libFuzzer through libfuzzer-sys, on
# the stable toolchain: coverage instrumentation comes from
# scripts/fuzz/rustc-wrapper.sh, no sanitizer, no nightly), then fuzzes each
# target for SECONDS (default 600) under `nice`, one at a time, with a 2 GB
# RSS limit and a 10 s limit per input.
#
#   scripts/fuzz/run.sh [SECONDS] [TARGET…]     (no TARGET: all of them)
#
# VISAGE_FUZZ_SOURCE=<checkout> builds the libraries of another checkout
# (e.g. a `git worktree` of the last commit while the working tree is
# mid-edit); VISAGE_FUZZ_NO_BUILD=1 reuses the last build.
#
# Per target: the committed corpus (fuzz/corpus/<target>) plus the gathered
# seeds (scripts/fuzz/seed.sh) start a working corpus in
# fuzz/corpus-work/<target>; libFuzzer runs in fork mode so a finding is
# saved and the run goes on; every crash, timeout or out-of-memory input is
# copied to fuzz/regressions/<target>/ (replayed by
# crates/visage-cli/tests/fuzz_regressions.rs); the working corpus is then
# minimised (libFuzzer's merge, what `cargo fuzz cmin` runs) back into
# fuzz/corpus/<target>. One row per target is appended to
# fuzz/campaign.tsv: executions, edge coverage (cov), features (ft), corpus
# size and findings, for docs/reliability.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
seconds="${1:-600}"
shift || true
fuzz="$root/fuzz"
bin="$fuzz/target/release/visage-fuzz"
results="$fuzz/campaign.tsv"

source_root="${VISAGE_FUZZ_SOURCE:-$root}"
if [ -z "${VISAGE_FUZZ_NO_BUILD:-}" ]; then
  (cd "$source_root/fuzz" && CARGO_TARGET_DIR="$fuzz/target" RUSTC_WRAPPER="$root/scripts/fuzz/rustc-wrapper.sh" nice -n 19 cargo build --release)
  # What was built, for the results: the commit, marked when the libraries had uncommitted edits.
  built="$(git -C "$source_root" rev-parse --short HEAD)"
  [ -z "$(git -C "$source_root" status --porcelain -- crates fuzz/harness fuzz/src)" ] || built="$built+edits"
  echo "$built" > "$fuzz/target/built-from"
fi
commit="$(cat "$fuzz/target/built-from" 2>/dev/null || echo unknown)"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^    Target { name: "\([a-z_0-9]*\)".*/\1/p' "$fuzz/harness/mod.rs")
fi
[ -d "$fuzz/corpus-work/seeds" ] || "$root/scripts/fuzz/seed.sh"
[ -f "$results" ] || printf 'date\tcommit\ttarget\tseconds\texecutions\tcov\tft\tcorpus\tcrashes\tooms\ttimeouts\n' > "$results"

for target in "${targets[@]}"; do
  case "$target" in
    onnx|torch_zip|verification_bin|safetensors|pickle_torch) max_len=131072 ;;
    recordio_scan|recordio_idx|image_decode|gallery_wal|gallery_snapshot|npy) max_len=65536 ;;
    *) max_len=16384 ;;
  esac
  work="$fuzz/corpus-work/$target"
  artifacts="$fuzz/artifacts/$target"
  mkdir -p "$work" "$artifacts" "$fuzz/corpus/$target"
  cp -n "$fuzz/corpus/$target"/* "$work"/ 2>/dev/null || true
  cp -n "$fuzz/corpus-work/seeds/$target"/* "$work"/ 2>/dev/null || true
  log="$fuzz/corpus-work/$target.log"
  echo "== $target: ${seconds}s"
  started=$(date +%s)
  before=$(ls "$artifacts" | sort)
  VISAGE_FUZZ_TARGET="$target" nice -n 19 "$bin" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len="$max_len" \
    -artifact_prefix="$artifacts/" "$work" > "$log" 2>&1 || true
  ran=$(( $(date +%s) - started ))
  # The last status line: "#N: cov: C ft: F corp: K exec/s: E oom/timeout/crash: a/b/c time: …"
  status=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1 || true)
  execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$status")
  cov=$(sed -E 's/.* cov: ([0-9]+).*/\1/' <<<"$status")
  ft=$(sed -E 's/.* ft: ([0-9]+).*/\1/' <<<"$status")
  # Findings of this run: the artifacts that were not there before it (the
  # fork-mode counters miss a job killed by the time limit).
  new=$(comm -13 <(echo "$before") <(ls "$artifacts" | sort))
  crashes=$(grep -c '^crash-' <<<"$new" || true)
  ooms=$(grep -c '^oom-' <<<"$new" || true)
  timeouts=$(grep -cE '^(timeout|slow-unit)-' <<<"$new" || true)
  # Every failing input becomes a regression file, kept for good.
  for f in "$artifacts"/crash-* "$artifacts"/oom-* "$artifacts"/timeout-* "$artifacts"/slow-unit-*; do
    [ -f "$f" ] || continue
    mkdir -p "$fuzz/regressions/$target"
    cp -n "$f" "$fuzz/regressions/$target/"
  done
  # Minimise into the committed corpus: by edges only (-use_counters=0), so
  # it stays small enough to commit; the working corpus keeps the rest.
  merged="$fuzz/corpus-work/$target.merged"
  rm -rf "$merged" && mkdir -p "$merged"
  VISAGE_FUZZ_TARGET="$target" nice -n 19 "$bin" -merge=1 -use_counters=0 -rss_limit_mb=2048 -timeout=10 -max_len="$max_len" "$merged" "$work" >> "$log" 2>&1 || true
  if [ -n "$(ls -A "$merged")" ]; then
    rm -rf "$fuzz/corpus/$target" && mv "$merged" "$fuzz/corpus/$target"
  fi
  # The harness's scratch folders of the fork-mode jobs (named by process id), once their process is gone.
  for scratch in /dev/shm/visage-fuzz-* "${TMPDIR:-/tmp}"/visage-fuzz-*; do
    [ -d "$scratch" ] || continue
    pid=$(basename "$scratch" | cut -d- -f3)
    kill -0 "$pid" 2>/dev/null || rm -rf "$scratch"
  done
  corpus=$(ls "$fuzz/corpus/$target" | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$commit" "$target" "$ran" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "${crashes:-?}" "${ooms:-?}" "${timeouts:-?}" | tee -a "$results"
done
