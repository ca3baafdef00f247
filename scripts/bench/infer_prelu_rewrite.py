"""What ONNX Runtime's PRelu costs, and what rewriting it would save.

Profiling `visage bench embed` (docs/benchmarks.md, "Inference") showed ONNX
Runtime 1.31.1 spending most of the Paddle ArcFace MobileFaceNet's time in
one scalar, branchy loop: its CPU PRelu with a per-channel slope ([C, 1, 1])
runs `x < 0 ? x * slope : x` element by element. The same function is
`Relu(x) + slope * Min(x, 0)`, four operators ONNX Runtime vectorises. This
script writes that rewrite of a model (every PRelu node replaced, nothing
else touched), checks both give the same embeddings on the reference crops,
and times both in onnxruntime-python with the same thread count.

    scripts/bench/.venv/bin/python -m pip install onnx
    scripts/bench/.venv/bin/python scripts/bench/infer_prelu_rewrite.py --threads 1
"""

import argparse
import glob
import os
import time

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

SHARED = os.path.join(os.path.dirname(__file__), "../../../shared/data")


def rewrite_prelu(model):
    """Replaces each PRelu(x, slope) by Relu(x) + slope · Min(x, 0), in place."""
    zero = "prelu_rewrite_zero"
    model.graph.initializer.append(numpy_helper.from_array(np.zeros((1,), np.float32), zero))
    nodes, replaced = [], 0
    for node in model.graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        (x, slope), (y,) = node.input, node.output
        nodes += [
            helper.make_node("Relu", [x], [y + "_positive"]),
            helper.make_node("Min", [x, zero], [y + "_negative"]),
            helper.make_node("Mul", [y + "_negative", slope], [y + "_scaled"]),
            helper.make_node("Add", [y + "_positive", y + "_scaled"], [y]),
        ]
        replaced += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return replaced


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(SHARED, "models/arcface_mobileface_128d_paddle.onnx"))
    parser.add_argument("--crops", default=os.path.join(SHARED, "reference/aligned"))
    parser.add_argument("--out", default="/tmp/prelu_rewritten.onnx")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    model = onnx.load(args.model)
    replaced = rewrite_prelu(model)
    onnx.save(model, args.out)
    paths = sorted(glob.glob(os.path.join(args.crops, "**/*.png"), recursive=True))
    crops = np.stack([cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in paths]).astype(np.float32)
    blob = np.ascontiguousarray(((crops - 127.5) / 127.5).transpose(0, 3, 1, 2))

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    sessions = {name: ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                for name, path in [("original", args.model), ("rewritten", args.out)]}
    name_in = sessions["original"].get_inputs()[0].name

    def embed_all(session, batch):
        return np.concatenate([session.run(None, {name_in: blob[i:i + batch]})[0] for i in range(0, len(blob), batch)])

    outputs = {name: embed_all(session, 1) for name, session in sessions.items()}
    a, b = outputs["original"], outputs["rewritten"]
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    print(f"{replaced} PRelu nodes rewritten; {len(blob)} crops: lowest cosine {cosine.min():.7f}, "
          f"max |difference| {np.abs(a - b).max():.3g}")
    runs = {}
    for _ in range(args.rounds):  # rounds alternate the two models
        for batch in (1, 8):
            for name, session in sessions.items():
                embed_all(session, batch)
                for _ in range(args.runs):
                    start = time.perf_counter()
                    embed_all(session, batch)
                    runs.setdefault((name, batch), []).append(time.perf_counter() - start)
    for batch in (1, 8):
        rate = {name: len(blob) / float(np.median(runs[(name, batch)])) for name in sessions}
        print(f"batch {batch}, {args.threads} threads: original {rate['original']:.1f} img/s, "
              f"rewritten {rate['rewritten']:.1f} img/s ({rate['rewritten'] / rate['original']:.2f}x)")


if __name__ == "__main__":
    main()
