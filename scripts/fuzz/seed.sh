#!/usr/bin/env bash
# Gathers the starting seeds of every fuzz target into OUT (default
# fuzz/corpus-work/seeds/<target>/): small pieces of the committed test
# fixtures and examples, pickles written by Python's own pickle module, and
# what the libraries' writers make (VISAGE_FUZZ_MAKE_SEEDS, see
# fuzz/src/seeds.rs). run.sh minimises them into fuzz/corpus/<target>/.
# Large fixtures are cut to their first bytes: a seed only has to show the
# format, and small inputs keep the fuzzer fast.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/fuzz/corpus-work/seeds}"
bin="${VISAGE_FUZZ_BIN:-$root/fuzz/target/release/visage-fuzz}"
rm -rf "$out"
mkdir -p "$out"
fx_eval="$root/crates/visage-eval/tests/fixtures"
fx_nn="$root/crates/visage-nn/tests/fixtures"
fx_data="$root/crates/visage-data/tests/fixtures"

# put TARGET NAME FILE [MAX_BYTES]
put() {
  mkdir -p "$out/$1"
  if [ -n "${4:-}" ]; then head -c "$4" "$3" > "$out/$1/$2"; else cp "$3" "$out/$1/$2"; fi
}

# Libraries' writers: gallery, keys, multipart, recordio with .idx, .npy,
# images, ONNX and safetensors of tiny networks.
VISAGE_FUZZ_MAKE_SEEDS="$out" "$bin" >/dev/null 2>&1

for f in "$root"/examples/digits/train/0/0000.png "$root"/examples/digits/train/1/*.png; do
  put image_decode "digit_$(basename "$(dirname "$f")")_$(basename "$f")" "$f"
  break
done

put verification_bin verify_p4.bin "$fx_eval/verify_p4.bin"
put verification_bin verify_p2_head.bin "$fx_eval/verify_p2.bin" 8192
put pickle_plain verify_p4.bin "$fx_eval/verify_p4.bin" 8192
# The small archives only: the tiny-model ones are ~100 KB of weights.
for f in "$fx_nn"/*.pth "$fx_nn"/*.ckpt; do
  [ "$(stat -c %s "$f")" -le 4096 ] && put torch_zip "$(basename "$f")" "$f"
done
# Every data.pkl inside the torch.save archives, and Python's pickles of plain data.
python3 - "$out" "$fx_nn" <<'PY'
import os, pickle, sys, zipfile, glob
out, fx = sys.argv[1], sys.argv[2]
os.makedirs(f"{out}/pickle_torch", exist_ok=True)
os.makedirs(f"{out}/pickle_plain", exist_ok=True)
for path in sorted(glob.glob(f"{fx}/*.pth") + glob.glob(f"{fx}/*.ckpt")):
    try:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith("data.pkl"):
                    open(f"{out}/pickle_torch/{os.path.basename(path)}.pkl", "wb").write(z.read(name))
    except zipfile.BadZipFile:
        open(f"{out}/pickle_torch/{os.path.basename(path)}.legacy", "wb").write(open(path, "rb").read()[:4096])
value = {b"k": [1, -2, 3.5, True, None, b"\x00\xff", "text", (1, 2), {"n": 10**30}], "big": 2**70, "f": float("inf")}
for protocol in range(0, 6):
    open(f"{out}/pickle_plain/plain_p{protocol}.pkl", "wb").write(pickle.dumps(value, protocol=protocol))
    shared = [b"x" * 3] * 2
    open(f"{out}/pickle_plain/memo_p{protocol}.pkl", "wb").write(pickle.dumps((shared, [shared, shared], [[[[1]]]]), protocol=protocol))
PY

# ONNX and safetensors seeds come from the tiny networks of fuzz/src/seeds.rs.

for d in rust_written mxnet_written; do
  put recordio_scan "$d.rec" "$fx_data/$d/train.rec"
  python3 - "$fx_data/$d/train.idx" "$fx_data/$d/train.rec" "$out/recordio_idx/$d" <<'PY'
import os, struct, sys
idx, rec, dest = (open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), sys.argv[3])
os.makedirs(os.path.dirname(dest), exist_ok=True)
open(dest, "wb").write(struct.pack("<H", len(idx)) + idx + rec)
PY
done

for f in cluster_x.npy kmeans_x.npy verify_emb.npy; do put npy "$f" "$fx_eval/$f" 4096; done
put npy ijb_features.npy "$fx_eval/ijb/features.npy" 4096
python3 - "$out/embeddings_csv" <<'PY'
import os, sys
os.makedirs(sys.argv[1], exist_ok=True)
open(f"{sys.argv[1]}/header.csv", "w").write("a,b,c\n0.1,0.2,0.3\n-1e-3,2.5e2,7\n")
open(f"{sys.argv[1]}/plain.csv", "w").write("1,2\n3,4\n5,6\n")
PY
for f in roc_imbalanced.csv roc_ties.csv roc_continuous.csv; do put scores_csv "$f" "$fx_eval/$f" 2048; done
put pairs verify_pairs.txt "$fx_eval/verify_pairs.txt" 2048
for f in metrics_truth.txt cluster_truth.txt; do put labels "$f" "$fx_eval/$f" 2048; done
put erc_csv erc_pairs.csv "$fx_eval/erc_pairs.csv" 2048
for f in "$fx_eval"/ijb/meta/*; do put ijb_meta "$(basename "$f")" "$f" 2048; done

for f in "$root"/docs/spec/examples/heads_*.input.json "$root"/examples/heads/*.json; do
  [ -f "$f" ] && put heads_case "$(basename "$f")" "$f" 16384
done
for f in "$root"/examples/train/*.toml; do put train_config "$(basename "$f")" "$f"; done
for f in "$root"/models/*.toml; do
  case "$(basename "$f")" in
    scrfd*|face_detection*) put detector_config "$(basename "$f")" "$f" ;;
    *) put recognizer_config "$(basename "$f")" "$f" ;;
  esac
done
du -sh "$out"
