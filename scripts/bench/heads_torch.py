"""PyTorch CPU reference for `visage bench heads`: forward + backward of the
ArcFace, MagFace, AdaFace and SV-AM-Softmax heads, written from docs/spec/heads.md (same formulas as
visage, float32), timed the same way. Prints one JSON object per line:
{"head", "classes", "batch", "dim", "loss", "median_s", "runs_s"}.

Usage: python heads_torch.py --classes 10000,100000 --batch 512 --dim 512 --runs 3 --threads 2
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


def normalised_cosines(x, w):
    return (F.normalize(x, dim=1) @ F.normalize(w, dim=1).t()).clamp(-1.0, 1.0)


def arcface_target(cos_t, m, s, easy_margin):
    sin_t = (1.0 - cos_t * cos_t).clamp_min(1e-12).sqrt()
    cos_tm = cos_t * torch.cos(m) - sin_t * torch.sin(m)
    if easy_margin:
        return s * torch.where(cos_t > 0, cos_tm, cos_t)
    return s * torch.where(cos_t > -torch.cos(m), cos_tm, cos_t - m * torch.sin(m))


def replace_target(cos, labels, target, s):
    logits = cos * s
    return logits.scatter(1, labels[:, None], target)


def arcface(x, w, labels, state):
    s, m = 64.0, torch.tensor(0.5)
    cos = normalised_cosines(x, w)
    target = arcface_target(cos.gather(1, labels[:, None]), m, s, False)
    return F.cross_entropy(replace_target(cos, labels, target, s), labels)


def magface(x, w, labels, state):
    s, l_a, u_a, l_m, u_m, lam = 64.0, 10.0, 110.0, 0.45, 0.8, 35.0
    a = x.norm(dim=1, keepdim=True).clamp(l_a, u_a)
    m = (u_m - l_m) / (u_a - l_a) * (a - l_a) + l_m
    cos = normalised_cosines(x, w)
    target = arcface_target(cos.gather(1, labels[:, None]), m, s, True)
    g = a / (u_a * u_a) + 1.0 / a
    return F.cross_entropy(replace_target(cos, labels, target, s), labels) + lam * g.mean()


def adaface(x, w, labels, state):
    s, m, h, alpha, eps = 64.0, 0.4, 0.333, 0.01, 1e-3
    n = x.norm(dim=1, keepdim=True).detach().clamp(0.001, 100.0)
    state["mean"] = alpha * n.mean().item() + (1 - alpha) * state["mean"]
    state["std"] = alpha * n.std().item() + (1 - alpha) * state["std"]
    ind = (h * (n - state["mean"]) / (state["std"] + eps)).clamp(-1.0, 1.0)
    cos = normalised_cosines(x, w).clamp(-1.0 + eps, 1.0 - eps)
    theta = torch.acos(cos.gather(1, labels[:, None]))
    shifted = (theta - m * ind).clamp(eps, math.pi - eps)
    target = s * (torch.cos(shifted) - (m + m * ind))
    return F.cross_entropy(replace_target(cos, labels, target, s), labels)


def svam(x, w, labels, state):
    s, m, t = 32.0, 0.35, 1.2
    cos = normalised_cosines(x, w)
    cos_t = cos.gather(1, labels[:, None])
    # Support vectors: non-target classes with cos > cos_target - m (a detached indicator).
    support = (cos.detach() > cos_t.detach() - m).scatter(1, labels[:, None], False)
    logits = s * torch.where(support, t * cos + t - 1.0, cos)
    return F.cross_entropy(logits.scatter(1, labels[:, None], s * (cos_t - m)), labels)


def hashed_uniform(rows, cols, seed):
    """u(i, j) = ((i·73856093 ^ j·19349663 ^ seed·83492791) mod 2^32)/2^32 − 0.5, exactly as
    visage's benchmark computes it, so both sides see identical inputs."""
    i = torch.arange(rows, dtype=torch.int64)[:, None] * 73856093
    j = torch.arange(cols, dtype=torch.int64)[None, :] * 19349663
    h = torch.bitwise_xor(torch.bitwise_xor(i, j), torch.tensor(seed * 83492791, dtype=torch.int64)) & 0xFFFFFFFF
    return (h.to(torch.float64) / 4294967296.0 - 0.5).to(torch.float32)


HEADS = {"arcface": arcface, "magface": magface, "adaface": adaface, "svam": svam}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", default="10000,100000")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--heads", default="arcface,magface,adaface,svam")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for classes in [int(c) for c in args.classes.split(",")]:
        for name in args.heads.split(","):
            x = (hashed_uniform(args.batch, args.dim, 1) * 3.0).requires_grad_()
            w = hashed_uniform(classes, args.dim, 2).requires_grad_()
            labels = (torch.arange(args.batch, dtype=torch.int64) * 7919) % classes
            state = {"mean": 20.0, "std": 100.0}
            runs, loss = [], None
            for i in range(args.runs + 1):
                x.grad = None
                w.grad = None
                start = time.perf_counter()
                loss = HEADS[name](x, w, labels, state)
                loss.backward()
                elapsed = time.perf_counter() - start
                if i > 0:  # the first run is a warm-up
                    runs.append(elapsed)
            runs.sort()
            print(json.dumps({"head": name, "classes": classes, "batch": args.batch, "dim": args.dim,
                              "loss": loss.item(), "median_s": runs[len(runs) // 2], "runs_s": runs}), flush=True)


if __name__ == "__main__":
    main()
