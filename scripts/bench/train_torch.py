"""PyTorch CPU reference for `visage bench train`: one training step of an
insightface IResNet + ArcFace head (s = 64, m = 0.5) with SGD (lr 0.1,
momentum 0.9, weight decay 5e-4), timed the way visage times its own step.
The IResNet and MobileFaceNet are scripts/reference/backbones_reference.py's
(the same layouts visage-nn implements). Prints one JSON object:
{"arch", "batch", "classes", "loss", "median_s", "runs_s"}.

Usage: python train_torch.py --arch iresnet50 --batch 32 --classes 1000 --runs 5 --threads 2
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
from backbones_reference import InsightfaceIResNet, MobileFaceNet  # noqa: E402
from heads_torch import arcface, hashed_uniform  # noqa: E402

BLOCKS = {"iresnet18": (2, 2, 2, 2), "iresnet34": (3, 4, 6, 3), "iresnet50": (3, 4, 14, 3), "iresnet100": (3, 13, 30, 3)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="iresnet50", choices=sorted(BLOCKS) + ["mobilefacenet"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # mobilefacenet: insightface mbf (scale 2, blocks 1-4-6-2), visage-nn's default MobileFaceNet
    model = MobileFaceNet() if args.arch == "mobilefacenet" else InsightfaceIResNet(BLOCKS[args.arch])
    centres = torch.nn.Parameter(torch.normal(0.0, 0.01, (args.classes, 512)))
    params = [p for p in model.parameters() if p.requires_grad] + [centres]
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
    images = torch.tensor(hashed_uniform(args.batch, 3 * 112 * 112, 1)).reshape(args.batch, 3, 112, 112) * 2.0
    labels = torch.tensor([i * 7919 % args.classes for i in range(args.batch)])
    model.train()
    runs, first_loss = [], None
    for run in range(args.runs + 1):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = arcface(model(images), centres, labels, None)
        loss.backward()
        optimizer.step()
        elapsed = time.perf_counter() - start
        if first_loss is None:
            first_loss = float(loss)
        if run > 0:
            runs.append(elapsed)
    runs.sort()
    # ru_maxrss is in KiB on Linux: the peak resident memory of this process.
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"arch": args.arch, "batch": args.batch, "classes": args.classes, "loss": first_loss, "median_s": runs[len(runs) // 2], "runs_s": runs, "peak_rss_mib": peak_rss_mib}))


if __name__ == "__main__":
    main()
