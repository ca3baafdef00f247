#!/usr/bin/env bash
# Does MXNet read what `visage data pack` writes? Packs examples/digits/train
# (10 identities, 1442 PNGs, re-encoded as JPEG quality 95) into
# train.rec/train.idx, then reads it back with MXNet 1.9.1 from PyPI in a
# fresh venv (its own RecordIO reader and image decoder, as insightface's
# training reads train.rec):
#   - recordio_fixtures.py check: the insightface header record, every
#     identity's key range, labels, JPEG format, a sequential read;
#   - below: every record's label is its folder's identity (sorted folder
#     names → 0, 1, …), the counts per identity match the folders, and the
#     pixels MXNet decodes are within a JPEG re-encoding of the source PNGs.
#
#   scripts/reference/mxnet_reads_ours.sh            # VISAGE_BIN=… to use a built binary
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
visage="${VISAGE_BIN:-}"
if [ -z "$visage" ]; then
  cargo build -p visage-cli
  visage="$root/target/debug/visage"
fi
venv="${MXNET_VENV:-$root/target/mxnet-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import mxnet, PIL" 2>/dev/null; then
  python3 -m venv "$venv"
  # MXNet 1.9.1 is the last release; it still uses np.bool, gone in numpy 1.24.
  "$venv/bin/pip" install --quiet "mxnet==1.9.1" "numpy<1.24" pillow
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
folder="$root/examples/digits/train"
"$visage" data pack "$folder" --aligned --out "$out/train.rec"
"$venv/bin/python" scripts/reference/recordio_fixtures.py check "$out"
"$venv/bin/python" - "$out" "$folder" <<'PY'
import io, os, sys
import mxnet as mx
import numpy as np
from PIL import Image

out, folder = sys.argv[1], sys.argv[2]
identities = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
record = mx.recordio.MXIndexedRecordIO(os.path.join(out, "train.idx"), os.path.join(out, "train.rec"), "r")
header, _ = mx.recordio.unpack(record.read_idx(0))
id_start = int(header.label[0])
counts = [0] * len(identities)
worst_mean, worst_max = 0.0, 0
# Each identity's files in sorted order: the order pack writes them in.
sources = {i: sorted(os.listdir(os.path.join(folder, name))) for i, name in enumerate(identities)}
seen = {i: 0 for i in sources}
for key in range(1, id_start):
    h, jpeg = mx.recordio.unpack(record.read_idx(key))
    image = mx.image.imdecode(jpeg).asnumpy()  # MXNet's own decoder (libmxnet's OpenCV), RGB
    label = int(h.label if h.flag == 0 else h.label[0])
    source = os.path.join(folder, identities[label], sources[label][seen[label]])
    seen[label] += 1
    counts[label] += 1
    expected = np.asarray(Image.open(source).convert("RGB")).astype(np.int16)
    assert image.shape == expected.shape, (key, source, image.shape, expected.shape)
    diff = np.abs(image.astype(np.int16) - expected)
    worst_mean, worst_max = max(worst_mean, float(diff.mean())), max(worst_max, int(diff.max()))
record.close()
folder_counts = [len(sources[i]) for i in range(len(identities))]
assert counts == folder_counts, (counts, folder_counts)
assert worst_mean < 2.0, worst_mean
print(f"mxnet {mx.__version__}: {sum(counts)} records, labels = sorted folder order, counts per identity {counts} = the folders'; "
      f"decoded pixels vs the source PNGs: worst per-image mean |diff| {worst_mean:.2f}, max {worst_max} grey levels (JPEG q95)")
PY
