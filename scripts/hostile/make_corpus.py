#!/usr/bin/env python3
"""Writes the hand-made hostile corpus that `crates/visage-cli/tests/hostile_cli.rs`
runs the `visage` binary over: one folder per kind of input file, each file
built to break a reader that trusts what it is told (huge declared shapes,
lying length fields, truncation, wrong dtypes, extreme image shapes, NaN/inf,
deep nesting). Standard library only; deterministic, so rerunning it rewrites
the same bytes.

    python3 scripts/hostile/make_corpus.py [OUT_DIR]

OUT_DIR defaults to crates/visage-cli/tests/hostile. Files are kept small
(the largest is a few hundred KiB): the test's point is what the reader does
with what the bytes *claim*, not with their size.
"""

import io
import os
import struct
import sys
import types
import zipfile
import zlib
import pickle

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "crates", "visage-cli", "tests", "hostile")


def write(kind, name, data):
    folder = os.path.join(OUT, kind)
    os.makedirs(folder, exist_ok=True)
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
    with open(os.path.join(folder, name), mode) as f:
        f.write(data)


# ---------------------------------------------------------------- pickles (.bin)
PROTO2 = b"\x80\x02"
STOP = b"."
NONE = b"N"
DUP = b"2"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
EMPTY_LIST = b"]"
APPEND = b"a"
BINGET = b"h"
BINUNICODE = b"X"
BINBYTES = b"B"
LONG4 = b"\x8b"
MARK = b"("
LIST = b"l"
FRAME = b"\x95"


def pickles():
    # DUP + TUPLE2: each round doubles the tree a deep-copying reader builds.
    write("bin", "dup_tuple2_bomb.bin", PROTO2 + NONE + (DUP + TUPLE2) * 40 + STOP)
    # A chain of one-element tuples deeper than any stack.
    write("bin", "nested_tuple1.bin", PROTO2 + NONE + TUPLE1 * 300_000 + STOP)
    # Lists nested by appending each to the one below it.
    write("bin", "nested_lists.bin", PROTO2 + EMPTY_LIST * 100_000 + APPEND * 99_999 + STOP)
    # MARK without end, deeply.
    write("bin", "marks.bin", PROTO2 + MARK * 200_000 + STOP)
    # Length fields far beyond the file.
    write("bin", "binunicode_4g.bin", PROTO2 + BINUNICODE + struct.pack("<I", 0xFFFFFFFF) + b"abc" + STOP)
    write("bin", "binbytes_4g.bin", b"\x80\x03" + BINBYTES + struct.pack("<I", 0xFFFFFFF0) + b"abc" + STOP)
    write("bin", "long4_2g.bin", PROTO2 + LONG4 + struct.pack("<i", 0x7FFFFFFF) + b"\x01" + STOP)
    write("bin", "frame_huge.bin", b"\x80\x04" + FRAME + struct.pack("<Q", 1 << 62) + NONE + STOP)
    # A memo read of a slot never written.
    write("bin", "memo_missing.bin", PROTO2 + BINGET + b"\xc8" + STOP)
    # Empty, garbage, no STOP.
    write("bin", "empty.bin", b"")
    write("bin", "not_a_pickle.bin", b"this is not a pickle at all\n" * 4)
    write("bin", "no_stop.bin", PROTO2 + EMPTY_LIST)
    # The right shape, (bins, issame), with bins that are not images.
    good = pickle.dumps(([b"\xff\xd8junk", b"\x89PNGjunk"], [True]), protocol=2)
    write("bin", "pairs_not_images.bin", good)
    write("bin", "truncated_valid.bin", good[: len(good) // 2])
    # issame longer than the images.
    write("bin", "issame_longer.bin", pickle.dumps(([b"a", b"b"], [True] * 1000), protocol=2))


# ------------------------------------------------------- torch.save archives
def fake_torch():
    """Just enough of a `torch` module for pickle to name its globals."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    collections = __import__("collections")

    def _rebuild_tensor_v2(*args):
        raise NotImplementedError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2

    class FloatStorage:
        pass

    FloatStorage.__module__ = "torch"
    FloatStorage.__qualname__ = "FloatStorage"
    torch.FloatStorage = FloatStorage
    torch._utils = utils
    sys.modules["torch"] = torch
    sys.modules["torch._utils"] = utils
    return _rebuild_tensor_v2, FloatStorage, collections.OrderedDict


class Tensor:
    def __init__(self, rebuild, storage, numel, offset, size, stride):
        self.rebuild, self.key = rebuild, ("storage", storage, "0", "cpu", numel)
        self.args = (offset, size, stride)

    def __reduce__(self):
        return (self.rebuild, (StorageRef(self.key),) + self.args + (False, {}))


class StorageRef:
    def __init__(self, key):
        self.key = key


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.key if isinstance(obj, StorageRef) else None


def torch_archive(name, numel, offset, size, stride, data=b"\0" * 16, key="conv1.weight"):
    rebuild, storage, ordered = fake_torch()
    state = ordered()
    state[key] = Tensor(rebuild, storage, numel, offset, size, stride)
    buf = io.BytesIO()
    TorchPickler(buf, protocol=2).dump(state)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/version", "3\n")
        z.writestr("archive/data/0", data)
    write("torch", name, out.getvalue())


def torch_archives():
    torch_archive("storage_2e62.pth", 1 << 62, 0, (1 << 62,), (1,))
    torch_archive("shape_overflow.pth", 4, 0, (1 << 32, 1 << 32), (1 << 32, 1))
    torch_archive("stride_overflow.pth", 4, 0, (2, 2), (1 << 62, 1 << 62))
    torch_archive("offset_huge.pth", 4, (1 << 62), (2, 2), (2, 1))
    torch_archive("negative_size.pth", 4, 0, (-4,), (1,))
    torch_archive("storage_short.pth", 1 << 20, 0, (1 << 20,), (1,), data=b"\0" * 8)
    # A data.pkl that deflates to 64 MiB of the same byte.
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"(" * (64 << 20))
    write("torch", "deflate_bomb.pth", out.getvalue())
    write("torch", "not_a_zip.pth", b"PK\x03\x04" + b"\xff" * 60)
    write("torch", "empty.pth", b"")


# ---------------------------------------------------------------- safetensors
def safetensors():
    def st(name, header, data=b""):
        h = header.encode() if isinstance(header, str) else header
        write("safetensors", name, struct.pack("<Q", len(h)) + h + data)

    st("header_len_huge.safetensors", b"{}"[:0], b"")  # overwritten just below
    write("safetensors", "header_len_huge.safetensors", struct.pack("<Q", 1 << 62) + b"{}")
    st("shape_overflow.safetensors", '{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}', b"\0" * 16)
    st("offsets_past_end.safetensors", '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,1099511627776]}}', b"\0" * 16)
    st("offsets_reversed.safetensors", '{"w":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}}', b"\0" * 16)
    st("deep_json.safetensors", "[" * 100_000 + "]" * 100_000)
    st("not_json.safetensors", b"\xff\xfe\xfd")


# --------------------------------------------------------------------- ONNX
def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def onnxs():
    real = open(os.path.join(ROOT, "models", "arcface_mobileface_128d_paddle.onnx"), "rb").read()
    for cut in (7, 1000, len(real) // 2, len(real) - 3):
        write("onnx", f"paddle_mbf_cut_{cut}.onnx", real[:cut])
    # ModelProto.graph (field 7, length-delimited) declaring 2^62 bytes.
    write("onnx", "graph_len_2e62.onnx", b"\x08\x07" + b"\x3a" + varint(1 << 62) + b"\0" * 16)
    # A varint that never ends.
    write("onnx", "endless_varint.onnx", b"\x08" + b"\xff" * 4096)
    # graph → initializer (field 5) whose dims (field 1) multiply past 2^64.
    tensor = b"".join(b"\x08" + varint(1 << 40) for _ in range(3)) + b"\x10\x01"
    graph = b"\x2a" + varint(len(tensor)) + tensor
    write("onnx", "dims_overflow.onnx", b"\x08\x07" + b"\x3a" + varint(len(graph)) + graph)
    write("onnx", "empty.onnx", b"")


# --------------------------------------------------------------------- .npy
def npy_bytes(header_dict_text, data=b"", magic=b"\x93NUMPY", version=b"\x01\x00", header_len=None):
    text = header_dict_text
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + " " * pad + "\n"
    hl = len(text) if header_len is None else header_len
    return magic + version + struct.pack("<H", hl) + text.encode("latin1") + data


def npys():
    row = struct.pack("<4f", 1, 0, 0, 0)
    write("npy", "rows_2e40.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 512), }", row * 8))
    write("npy", "shape_overflow.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", row))
    write("npy", "header_len_lie.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", row * 2, header_len=65535))
    write("npy", "truncated_data.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 4), }", row * 3))
    write("npy", "object_dtype.npy", npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (2, 4), }", b"\x80\x02N." * 8))
    write("npy", "int64.npy", npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }", b"\0" * 32))
    write("npy", "big_endian.npy", npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 4), }", row * 2))
    write("npy", "fortran.npy", npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 4), }", row * 2))
    write("npy", "three_d.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }", row * 2))
    write("npy", "zero_d.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", row[:4]))
    write("npy", "zero_columns.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 0), }", b""))
    nan = struct.pack("<4f", float("nan"), 0, 0, 0)
    inf = struct.pack("<4f", float("inf"), 1, 0, 0)
    write("npy", "nan_row.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }", row + nan + row + row))
    write("npy", "inf_row.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }", row + inf + row + row))
    write("npy", "bad_magic.npy", b"\x93NUMPX\x01\x00" + b"\0" * 56)
    write("npy", "deep_header.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': " + "(" * 20000 + ")" * 20000 + ", }"))
    write("npy", "empty.npy", b"")


# ------------------------------------------------------------------ RecordIO
MAGIC = 0xCED7230A


def rec_part(cflag, payload):
    pad = (-len(payload)) % 4
    return struct.pack("<II", MAGIC, (cflag << 29) | len(payload)) + payload + b"\0" * pad


def irheader(flag, label, id1=0, id2=0, extra=()):
    return struct.pack("<IfQQ", flag, label, id1, id2) + b"".join(struct.pack("<f", x) for x in extra)


def recordio():
    n = (1 << 20) // 8
    # Every record is the first part of a multi-part record that never ends.
    write("rec", "firsts_only.rec", rec_part(1, b"") * n)
    # One first part, then a million-byte chain of middle parts with no end.
    write("rec", "endless_chain.rec", rec_part(1, b"") + rec_part(2, b"") * (n - 1))
    # Chains that end, one after another: first + 1000 middles + last, repeated.
    chain = rec_part(1, b"") + rec_part(2, b"") * 1000 + rec_part(3, b"")
    write("rec", "many_chains.rec", chain * (n // 1002))
    # A length field far past the end of the file.
    write("rec", "length_lie.rec", struct.pack("<II", MAGIC, (1 << 29) - 1) + b"\0" * 64)
    write("rec", "bad_magic.rec", struct.pack("<II", 0xDEADBEEF, 8) + b"\0" * 8)
    write("rec", "truncated_header.rec", struct.pack("<I", MAGIC) + b"\x10")
    # insightface's header record declaring a billion identity records.
    header = rec_part(0, irheader(2, 0.0, extra=(1.0, 1e9)))
    write("rec", "id_range_huge.rec", header + rec_part(0, irheader(0, 0.0) + b"\xff\xd8"))
    # An IRHeader whose flag declares 2^32-1 extra labels.
    write("rec", "flag_huge.rec", rec_part(0, irheader(0xFFFFFFFF, 0.0)))
    write("rec", "empty.rec", b"")
    # .rec + a lying .idx, in their own folders (the .idx is found beside the .rec).
    good = rec_part(0, irheader(0, 1.0) + b"\xff\xd8\xff\xd9") * 4
    for name, idx in [
        ("idx_past_end", "0\t0\n1\t999999999\n"),
        ("idx_negative", "0\t-16\n"),
        ("idx_garbage", "zero\tone\n\x00\x01\n"),
        ("idx_duplicate", "0\t0\n0\t0\n1\t12\n"),
        ("idx_misaligned", "0\t3\n"),
    ]:
        write(f"rec_idx/{name}", "train.rec", good)
        write(f"rec_idx/{name}", "train.idx", idx)


# --------------------------------------------------------------- text inputs
def texts():
    write("scores", "nan.csv", "score,label\n0.5,1\nnan,0\n0.1,0\n")
    write("scores", "inf.csv", "score,label\n0.5,1\ninf,0\n-inf,1\n")
    write("scores", "label_two.csv", "score,label\n0.5,2\n0.1,0\n")
    write("scores", "one_column.csv", "score\n0.5\n0.2\n")
    write("scores", "no_header.csv", "0.5,1\n0.1,0\n")
    write("scores", "header_only.csv", "score,label\n")
    write("scores", "empty.csv", "")
    write("scores", "long_line.csv", "score,label\n" + "9" * 400_000 + ",1\n0.1,0\n")
    write("scores", "not_utf8.csv", b"score,label\n\xff\xfe,1\n")
    write("scores", "nul_bytes.csv", b"score,label\n0.5\x00,1\n")
    write("scores", "one_class.csv", "score,label\n0.5,1\n0.4,1\n")

    write("labels", "garbage.txt", "1\n2\nthree\n")
    write("labels", "huge_label.txt", "1\n18446744073709551615\n-9223372036854775808\n")
    write("labels", "empty.txt", "")
    write("labels", "long_line.txt", "1" * 400_000 + "\n")
    write("labels", "not_utf8.txt", b"\xff\n\xfe\n")

    write("erc", "nan.csv", "score,label,quality\n0.5,1,nan\n0.1,0,3\n")
    write("erc", "short_rows.csv", "score,label,quality\n0.5\n0.1,0\n")
    write("erc", "empty.csv", "")


# ---------------------------------------------------------- heads eval JSON
def heads_json():
    write("heads", "deep.json", "[" * 200_000 + "]" * 200_000)
    write("heads", "deep_object.json", '{"a":' * 100_000 + "1" + "}" * 100_000)
    write("heads", "classes_huge.json",
          '{"head":{"kind":"arcface","s":64.0,"m":0.5},"embeddings":[[1,0]],"labels":[0],"weights":[[1,0]],"num_classes":1000000000000}')
    write("heads", "mismatched.json",
          '{"head":{"kind":"arcface","s":64.0,"m":0.5},"embeddings":[[1,0],[0,1,2]],"labels":[0,7],"weights":[[1,0]]}')
    write("heads", "nan.json", '{"head":{"kind":"arcface","s":NaN,"m":0.5},"embeddings":[[1,0]],"labels":[0],"weights":[[1,0]]}')
    write("heads", "huge_number.json",
          '{"head":{"kind":"arcface","s":1e400,"m":0.5},"embeddings":[[1e308,1e308]],"labels":[0],"weights":[[1,0]]}')
    write("heads", "empty.json", "")


# ------------------------------------------------------------------- images
def png(width, height, rows=None, color_type=0, bit_depth=8, declared=None, extra_chunks=()):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    w, h = declared or (width, height)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    if rows is None:
        channels = {0: 1, 2: 3, 6: 4}[color_type]
        rows = b"".join(b"\0" + b"\x80" * (width * channels) for _ in range(height))
    body = chunk(b"IHDR", ihdr) + b"".join(chunk(k, d) for k, d in extra_chunks) + chunk(b"IDAT", zlib.compress(rows, 9))
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def exif(orientation_bytes):
    # A big-endian TIFF block with one IFD entry: Orientation (0x0112).
    return b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1) + struct.pack(">HHI", 0x0112, 3, 1) + orientation_bytes + b"\0\0\0\0"


def images():
    write("image", "wide_20000x1.png", png(20000, 1))
    write("image", "tall_1x20000.png", png(1, 20000))
    write("image", "declared_100000x100000.png", png(1, 1, declared=(100000, 100000)))
    write("image", "declared_zero.png", png(1, 1, declared=(0, 0)))
    write("image", "exif_orientation_9.png", png(8, 8, extra_chunks=[(b"eXIf", exif(b"\x00\x09\x00\x00"))]))
    write("image", "exif_count_huge.png", png(8, 8, extra_chunks=[(b"eXIf", b"MM\x00\x2a\x00\x00\x00\x08\xff\xff")]))
    write("image", "exif_offset_loop.png", png(8, 8, extra_chunks=[(b"eXIf", b"MM\x00\x2a\x00\x00\x00\x08\x00\x00\x00\x00\x00\x08")]))
    # A JPEG whose SOF0 declares 65500×65500, then ends.
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 65500, 65500, 1) + b"\x01\x11\x00"
    write("image", "jpeg_declared_65500.jpg", b"\xff\xd8" + sof + b"\xff\xd9")
    write("image", "jpeg_truncated.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + sof[:6])
    # A JPEG APP1 EXIF segment with a lying IFD count.
    app1 = b"Exif\0\0" + b"II\x2a\x00\x08\x00\x00\x00\xff\xff"
    write("image", "jpeg_exif_lie.jpg", b"\xff\xd8\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + b"\xff\xd9")
    # BMP declaring 2^31-1 × 2^31-1 with 24-bit pixels.
    bmp = b"BM" + struct.pack("<IHHI", 70, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 0x7FFFFFFF, 0x7FFFFFFF, 1, 24, 0, 0, 0, 0, 0, 0)
    write("image", "bmp_declared_huge.bmp", bmp + b"\0" * 16)
    # WebP RIFF with chunk sizes that lie.
    write("image", "webp_lie.webp", b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WEBPVP8 " + struct.pack("<I", 0xFFFFFF00) + b"\0" * 20)
    write("image", "gif_unsupported.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")
    write("image", "text.jpg", "this is not an image\n")
    write("image", "empty.png", b"")
    write("image", "png_16bit_gray_1x1.png", png(1, 1, rows=b"\0\x80\x00", bit_depth=16))


# ------------------------------------------------------------ TOML configs
def tomls():
    write("recognizer_toml", "deep.toml", "a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    write("recognizer_toml", "missing_file.toml", 'name = "x"\nfile = "no_such_model.onnx"\nfamily = "arcface"\n[normalization]\nchannel_order = "rgb"\nmean = [0,0,0]\nstd = [1,1,1]\n')
    write("recognizer_toml", "escape_path.toml", 'name = "x"\nfile = "/etc/passwd"\nsha256 = "00"\nfamily = "arcface"\n[normalization]\nchannel_order = "rgb"\nmean = [0,0,0]\nstd = [0,0,0]\n')
    write("recognizer_toml", "not_toml.toml", "[[[[\n= = =\n")
    write("detector_toml", "input_huge.toml",
          'name = "y"\nfile = "face_detection_yunet_2023mar.onnx"\nfamily = "yunet"\ninput_size = [1000000000, 1000000000]\nscore_threshold = 0.6\nnms_iou = 0.3\n')
    write("detector_toml", "nan_threshold.toml",
          'name = "y"\nfile = "face_detection_yunet_2023mar.onnx"\nfamily = "yunet"\nscore_threshold = nan\nnms_iou = inf\n')
    write("detector_toml", "deep.toml", "a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    write("train_toml", "deep.toml", "x = " + "{ a = " * 20_000 + "1" + " }" * 20_000 + "\n")
    write("train_toml", "huge_batch.toml",
          '[backbone]\narch = "iresnet18"\n[head]\nkind = "arcface"\n[data]\npath = "no_such.rec"\nbatch_size = 1099511627776\n')
    write("train_toml", "empty.toml", "")


# ----------------------------------------------------- gallery export, keys
def gallery_files():
    write("gallery_export", "deep.json", "[" * 200_000 + "]" * 200_000)
    write("gallery_export", "not_json.json", "\xff\xfe")
    write("gallery_export", "empty.json", "")
    write("gallery_export", "huge_dim.json", '{"version":1,"dim":1000000000000,"identities":[]}')
    write("keys", "garbage.keys", b"\xff\xfe\x00\x01" * 64)
    write("keys", "long_line.keys", "k" * 400_000 + "\n")
    write("keys", "deep.keys", "[" * 100_000)


if __name__ == "__main__":
    pickles()
    torch_archives()
    safetensors()
    onnxs()
    npys()
    recordio()
    texts()
    heads_json()
    images()
    tomls()
    gallery_files()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total / 1024:.0f} KiB)")
