"""Embedding throughput of a recogniser in onnxruntime-python: the reference
side of `visage bench embed`.

The same aligned crops (a list of image files, in the order visage uses),
the same model, the same normalisation and the same intra-op thread count as
visage. A timed run embeds every crop once in batches of B: build the NCHW
float32 blob from the decoded crops, normalise, `session.run`. Decoding is not
timed on either side. Prints one JSON line per batch size:
{"batch", "images", "median_s", "runs_s"} or {"batch", "skipped"} when the
model's batch dimension is fixed to another size. With --emb-out, the
L2-normalised batch-1 embeddings are saved so visage can check both sides
computed the same thing.
"""

import argparse
import json
import time

import cv2
import numpy as np
import onnxruntime as ort


def floats(text):
    values = [float(v) for v in text.split(",")]
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected 3 comma-separated numbers, got {text!r}")
    return np.array(values, dtype=np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--list", required=True, help="text file, one crop path per line")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads")
    parser.add_argument("--channel-order", choices=["rgb", "bgr"], default="rgb")
    parser.add_argument("--mean", type=floats, default=floats("127.5,127.5,127.5"))
    parser.add_argument("--std", type=floats, default=floats("127.5,127.5,127.5"))
    parser.add_argument("--emb-out", help="save the batch-1 embeddings (.npy, L2-normalised)")
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    (model_input,) = session.get_inputs()
    fixed_batch = model_input.shape[0] if isinstance(model_input.shape[0], int) else None

    with open(args.list) as f:
        paths = [line.rstrip("\n") for line in f if line.strip()]
    crops = []
    for path in paths:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"{path}: cannot decode")
        crops.append(bgr if args.channel_order == "bgr" else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    # The mean/std of the model config are given in the model's channel order.
    mean, std = args.mean.reshape(1, 1, 1, 3), args.std.reshape(1, 1, 1, 3)

    def embed_all(batch):
        features = []
        for start in range(0, len(crops), batch):
            chunk = crops[start:start + batch]
            blob = (np.stack(chunk).astype(np.float32) - mean) / std
            blob = np.ascontiguousarray(blob.transpose(0, 3, 1, 2))
            if fixed_batch is not None and len(chunk) < fixed_batch:
                blob = np.concatenate([blob, np.zeros((fixed_batch - len(chunk),) + blob.shape[1:], np.float32)])
            features.append(session.run(None, {model_input.name: blob})[0][: len(chunk)])
        return np.concatenate(features)

    for batch in [int(b) for b in args.batches.split(",")]:
        if fixed_batch is not None and batch != fixed_batch:
            print(json.dumps({"batch": batch, "skipped": f"the model's batch is fixed to {fixed_batch}"}), flush=True)
            continue
        for _ in range(args.warmup):
            features = embed_all(batch)
        runs = []
        for _ in range(args.runs):
            start = time.perf_counter()
            features = embed_all(batch)
            runs.append(time.perf_counter() - start)
        runs.sort()
        if batch == 1 and args.emb_out:
            features = features.reshape(len(crops), -1)
            np.save(args.emb_out, features / np.linalg.norm(features, axis=1, keepdims=True))
        print(json.dumps({"batch": batch, "images": len(crops), "median_s": runs[len(runs) // 2], "runs_s": runs}), flush=True)


if __name__ == "__main__":
    main()
