"""insightface RecordIO fixtures for visage-data, written and checked with MXNet itself.

    python recordio_fixtures.py write crates/visage-data/tests/fixtures/mxnet_written
    python recordio_fixtures.py check crates/visage-data/tests/fixtures/rust_written

`write` packs six 16x16 JPEGs of three identities the way insightface's packing
scripts lay a train.rec out (header record 0 with (id_start, id_end), image
records 1..6, one record per identity 7..9), using mxnet.recordio
(MXIndexedRecordIO / IRHeader / pack). Two records exercise the corners of the
format: key 3 has id2 = 0xced7230a, so its payload holds the RecordIO magic at a
4-byte-aligned offset and MXNet's writer splits it into a multi-part record; key
5 carries a label vector (flag = 2) instead of a scalar label. `expected.json`
lists what a reader must find (offsets from the .idx, header fields, labels,
sha256 of each image's bytes, PIL's decoding of key 1).

`check` reads a train.rec/train.idx pair written by visage (`visage data pack`
or the fixture test) with MXNet's readers, both indexed and sequential, and
checks insightface's layout: header range, labels, identity ranges, every image
decodable by PIL. With an `expected.json` beside it, labels and image sizes are
compared too. Exit status 1 on any mismatch.

Environment (Python 3.11): a venv with mxnet==1.9.1, numpy<1.24 (mxnet 1.9
still uses np.bool), pillow. See tests/fixtures/README.md of visage-data.
"""

import hashlib
import io
import json
import os
import struct
import sys

import mxnet as mx
import numpy as np
from PIL import Image

MAGIC = 0xCED7230A
# identity label of each image key 1..6
IMAGE_LABELS = [0, 0, 1, 1, 1, 2]


def make_jpeg(key, label):
    """A smooth 16x16 picture (gradients: JPEG keeps them well) unique per key."""
    y, x = np.mgrid[0:16, 0:16].astype(np.float32)
    r = 40 + 10 * x + 20 * label
    g = 60 + 8 * y + 15 * key
    b = 120 + 4 * (x + y) - 10 * label
    rgb = np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(out, format="JPEG", quality=95)
    return out.getvalue()


def write(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    rec_path = os.path.join(out_dir, "train.rec")
    idx_path = os.path.join(out_dir, "train.idx")
    writer = mx.recordio.MXIndexedRecordIO(idx_path, rec_path, "w")
    n_images = len(IMAGE_LABELS)
    id_start = n_images + 1
    id_end = id_start + max(IMAGE_LABELS) + 1
    records = {}

    header = mx.recordio.IRHeader(0, [float(id_start), float(id_end)], 0, 0)
    writer.write_idx(0, mx.recordio.pack(header, b""))
    records[0] = {"flag": 2, "label": 0.0, "label_vector": [id_start, id_end], "id": 0, "id2": 0, "image_len": 0}

    for key, label in enumerate(IMAGE_LABELS, start=1):
        jpeg = make_jpeg(key, label)
        id2 = MAGIC if key == 3 else 0
        if key == 5:
            header = mx.recordio.IRHeader(0, [float(label), 0.25], key, id2)
            entry = {"flag": 2, "label": 0.0, "label_vector": [float(label), 0.25]}
        else:
            header = mx.recordio.IRHeader(0, float(label), key, id2)
            entry = {"flag": 0, "label": float(label), "label_vector": []}
        writer.write_idx(key, mx.recordio.pack(header, jpeg))
        entry.update(id=key, id2=id2, image_len=len(jpeg), image_sha256=hashlib.sha256(jpeg).hexdigest(), class_label=label)
        records[key] = entry

    for identity in range(max(IMAGE_LABELS) + 1):
        keys = [k for k, l in enumerate(IMAGE_LABELS, start=1) if l == identity]
        key = id_start + identity
        header = mx.recordio.IRHeader(0, [float(keys[0]), float(keys[-1] + 1)], key, 0)
        writer.write_idx(key, mx.recordio.pack(header, b""))
        records[key] = {"flag": 2, "label": 0.0, "label_vector": [keys[0], keys[-1] + 1], "id": key, "id2": 0, "image_len": 0}
    writer.close()

    offsets = {}
    with open(idx_path) as f:
        for line in f:
            key, offset = line.split("\t")
            offsets[int(key)] = int(offset)
    for key, entry in records.items():
        entry["offset"] = offsets[key]

    # Where MXNet split key 3: continuation flags of its parts.
    with open(rec_path, "rb") as f:
        data = f.read()
    parts, position = [], offsets[3]
    while True:
        magic, lrecord = struct.unpack("<II", data[position : position + 8])
        assert magic == MAGIC
        flag, length = lrecord >> 29, lrecord & ((1 << 29) - 1)
        parts.append({"offset": position, "cflag": flag, "length": length})
        position += 8 + (length + 3) // 4 * 4
        if flag in (0, 3):
            break

    first = Image.open(io.BytesIO(make_jpeg(1, IMAGE_LABELS[0]))).convert("RGB")
    expected = {
        "written_by": f"mxnet {mx.__version__} mxnet.recordio.MXIndexedRecordIO, numpy {np.__version__}, pillow {Image.__version__ if hasattr(Image, '__version__') else ''}",
        "file_len": len(data),
        "id_range": [id_start, id_end],
        "records": {str(k): v for k, v in sorted(records.items())},
        "key3_parts": parts,
        "key1_pil_rgb": np.asarray(first).reshape(-1).tolist(),
    }
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(f"wrote {rec_path} ({len(data)} bytes), key 3 in {len(parts)} parts: {parts}")


def check(folder):
    rec_path = os.path.join(folder, "train.rec")
    idx_path = os.path.join(folder, "train.idx")
    failures = []

    def fail(message):
        failures.append(message)
        print("FAIL:", message)

    indexed = mx.recordio.MXIndexedRecordIO(idx_path, rec_path, "r")
    header, payload = mx.recordio.unpack(indexed.read_idx(0))
    if header.flag <= 0 or len(payload) != 0:
        fail(f"record 0 is not insightface's header: flag {header.flag}, {len(payload)} payload bytes")
    id_start, id_end = int(header.label[0]), int(header.label[1])
    labels = {}
    sizes = {}
    for key in range(1, id_start):
        header, jpeg = mx.recordio.unpack(indexed.read_idx(key))
        label = header.label if header.flag == 0 else header.label[0]
        if float(label) != int(label):
            fail(f"key {key}: label {label} is not whole")
        labels[key] = int(label)
        image = Image.open(io.BytesIO(jpeg))
        image.load()
        if image.format != "JPEG":
            fail(f"key {key}: image format {image.format}, expected JPEG")
        sizes[key] = list(image.size)
    for identity, key in enumerate(range(id_start, id_end)):
        header, payload = mx.recordio.unpack(indexed.read_idx(key))
        first, end = int(header.label[0]), int(header.label[1])
        members = [k for k, l in labels.items() if l == identity]
        if members and [first, end] != [min(members), max(members) + 1]:
            fail(f"identity {identity} (key {key}): range ({first}, {end}) but its images are keys {members}")
    indexed.close()

    # Sequential read without the index: same records in the same order.
    sequential = mx.recordio.MXRecordIO(rec_path, "r")
    count = 0
    while True:
        item = sequential.read()
        if item is None:
            break
        count += 1
    sequential.close()
    if count != id_end:
        fail(f"sequential read found {count} records, expected {id_end}")

    expected_path = os.path.join(folder, "expected.json")
    expected = None
    if os.path.exists(expected_path):
        with open(expected_path) as f:
            expected = json.load(f)
    if expected is not None and "images" in expected:  # written by visage's fixture test
        if expected["id_range"] != [id_start, id_end]:
            fail(f"id range ({id_start}, {id_end}), expected {expected['id_range']}")
        for key, entry in expected["images"].items():
            key = int(key)
            if labels.get(key) != entry["label"]:
                fail(f"key {key}: label {labels.get(key)}, expected {entry['label']}")
            if sizes.get(key) != entry["size"]:
                fail(f"key {key}: size {sizes.get(key)}, expected {entry['size']}")
    print(
        f"mxnet {mx.__version__} read {rec_path}: header ({id_start}, {id_end}), {len(labels)} images, "
        f"{id_end - id_start} identities, labels {[labels[k] for k in sorted(labels)]}, sizes {sorted({tuple(s) for s in sizes.values()})}, "
        f"{count} records sequentially: {'OK' if not failures else f'{len(failures)} FAILURES'}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        sys.exit(__doc__)
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        sys.exit(check(sys.argv[2]))
