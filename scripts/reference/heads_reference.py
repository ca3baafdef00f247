#!/usr/bin/env python3
"""Independent float64 NumPy reference for the visage margin-loss heads.

Written directly from docs/spec/heads.md.  Only the forward loss is coded;
every gradient is obtained by central finite differences, so the reference
shares no derivative algebra with the implementation under test.

Usage
    python3 scripts/reference/heads_reference.py CASE.input.json
        print the expected JSON for one input (contract of `visage heads eval`)
    python3 scripts/reference/heads_reference.py --generate OUTDIR
        write the seeded fixture set (NAME.input.json + NAME.expected.json)
    python3 scripts/reference/heads_reference.py --check CASE.input.json CASE.expected.json
        compare this reference with another expected file and print the gaps

Input JSON
    {"head": {"kind": ..., <params>}, "embeddings": [[B x D]],
     "weights": [[rows x D]], "labels": [B],
     "state": {"batch_mean": f, "batch_std": f}}      (state: adaface only)
Output JSON
    {"loss": f, "grad_embeddings": [[B x D]], "grad_weights": [[rows x D]]}
    plus "state" (after this batch's update) for adaface.
Gradients are of the batch-mean loss.
"""

import argparse
import json
import math
import os
import sys

import numpy as np

# ---------------------------------------------------------------------------
# Head parameters
# ---------------------------------------------------------------------------

DEFAULTS = {
    "softmax": {},
    "normface": {"s": 64.0},
    "sphereface": {"s": 64.0, "m": 4.0},
    "cosface": {"s": 64.0, "m": 0.4},
    "arcface": {"s": 64.0, "m": 0.5, "easy_margin": False},
    # The spec gives no defaults for m1, m2, m3: they must be given.
    "combined": {"s": 64.0},
    "subcenter": {"s": 64.0, "m": 0.5, "easy_margin": False, "k": 3},
    "magface": {"s": 64.0, "l_a": 10.0, "u_a": 110.0, "l_m": 0.45, "u_m": 0.8,
                "lambda_g": 35.0, "easy_margin": True},
    "adaface": {"s": 64.0, "m": 0.4, "h": 0.333, "t_alpha": 0.01, "eps": 1e-3},
    "svam": {"s": 32.0, "m": 0.35, "t": 1.2},
}
REQUIRED = {"combined": ("m1", "m2", "m3")}
ALLOWED = {k: set(v) | set(REQUIRED.get(k, ())) for k, v in DEFAULTS.items()}

ADAFACE_INITIAL_STATE = {"batch_mean": 20.0, "batch_std": 100.0}


class HeadError(ValueError):
    pass


def resolve_params(head):
    kind = head.get("kind")
    if kind not in DEFAULTS:
        raise HeadError(f"unknown head kind {kind!r}")
    extra = set(head) - {"kind"} - ALLOWED[kind]
    if extra:
        raise HeadError(f"{kind}: unknown parameter(s) {sorted(extra)}")
    p = dict(DEFAULTS[kind])
    for name in REQUIRED.get(kind, ()):
        if name not in head:
            raise HeadError(f"{kind}: parameter {name} is required (the spec gives no default)")
    p.update({k: v for k, v in head.items() if k != "kind"})
    if kind == "magface":
        check_magface_bound(p)
    if kind == "subcenter":
        p["k"] = int(p["k"])
    if kind == "svam" and not p["t"] >= 1.0:
        raise HeadError(f"svam: t = {p['t']} must be at least 1")
    return kind, p


def check_magface_bound(p):
    """lambda_g >= s*K / (-g'(l_a)), K = (u_m - l_m)/(u_a - l_a), g'(a) = 1/u_a^2 - 1/a^2."""
    K = (p["u_m"] - p["l_m"]) / (p["u_a"] - p["l_a"])
    minus_gprime = 1.0 / p["l_a"] ** 2 - 1.0 / p["u_a"] ** 2
    bound = p["s"] * K / minus_gprime
    if p["lambda_g"] < bound:
        raise HeadError(f"magface: lambda_g={p['lambda_g']} is below the bound "
                        f"s*K/(-g'(l_a)) = {bound}")
    return bound


# ---------------------------------------------------------------------------
# Forward pieces
# ---------------------------------------------------------------------------

def unit_rows(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def cosines(x, w, lo=-1.0, hi=1.0):
    """cos theta_ij = clamp(xhat_i . what_j, lo, hi), shape B x rows."""
    return np.clip(unit_rows(x) @ unit_rows(w).T, lo, hi)


def cross_entropy(logits, y):
    """Mean over the batch of softmax cross-entropy (numerically stable)."""
    mx = logits.max(axis=1, keepdims=True)
    lse = mx[:, 0] + np.log(np.exp(logits - mx).sum(axis=1))
    return float(np.mean(lse - logits[np.arange(len(y)), y]))


def arcface_target(cos_t, m, easy_margin):
    """ArcFace target cosine (before the factor s); m may be per sample."""
    theta = np.arccos(cos_t)
    if easy_margin:
        return np.where(cos_t > 0.0, np.cos(theta + m), cos_t)
    return np.where(cos_t > np.cos(math.pi - m),
                    np.cos(theta + m),
                    cos_t - m * np.sin(math.pi - m))


def with_target(cos, y, target):
    out = cos.copy()
    out[np.arange(len(y)), y] = target
    return out


def adaface_frozen(x, p, state):
    """Detached AdaFace quantities, computed once from the unperturbed input.

    n_i is detached, so the running statistics (built from n) and s_hat are
    constants as far as gradients go.
    """
    st = ADAFACE_INITIAL_STATE if state is None else state
    n = np.clip(np.linalg.norm(x, axis=1), 0.001, 100.0)
    ta = p["t_alpha"]
    mu = ta * float(np.mean(n)) + (1.0 - ta) * float(st["batch_mean"])
    sigma = ta * float(np.std(n, ddof=1)) + (1.0 - ta) * float(st["batch_std"])
    s_hat = np.clip(p["h"] * (n - mu) / (sigma + p["eps"]), -1.0, 1.0)
    return {"s_hat": s_hat, "state": {"batch_mean": mu, "batch_std": sigma}}


def svam_frozen(x, w, y, p):
    """SV-AM-Softmax's detached support-vector indicator, from the unperturbed
    input: I_ik = [cos_ik > cos_iy - m] for the non-target classes k != y_i."""
    cos = cosines(x, w)
    idx = np.arange(len(y))
    support = cos > (cos[idx, y] - p["m"])[:, None]
    support[idx, y] = False
    return {"support": support}


def head_loss(kind, p, x, w, y, frozen=None):
    """Batch-mean loss of one head. `frozen` holds detached values (adaface)."""
    idx = np.arange(len(y))
    if kind == "softmax":
        return cross_entropy(x @ w.T, y)

    s = p["s"]
    if kind == "adaface":
        eps, m = p["eps"], p["m"]
        cos = cosines(x, w, -1.0 + eps, 1.0 - eps)
        s_hat = frozen["s_hat"]
        theta = np.arccos(cos[idx, y])
        theta_p = np.clip(theta - m * s_hat, eps, math.pi - eps)
        target = np.cos(theta_p) - (m + m * s_hat)
        return cross_entropy(s * with_target(cos, y, target), y)

    if kind == "subcenter":
        K = p["k"]
        c_all = cosines(x, w)
        if c_all.shape[1] % K:
            raise HeadError(f"subcenter: {c_all.shape[1]} weight rows is not a multiple of k={K}")
        cos = c_all.reshape(len(y), -1, K).max(axis=2)   # row c*K+j -> [c, j]
        target = arcface_target(cos[idx, y], p["m"], bool(p["easy_margin"]))
        return cross_entropy(s * with_target(cos, y, target), y)

    cos = cosines(x, w)
    cos_t = cos[idx, y]
    if kind == "normface":
        target = cos_t
    elif kind == "cosface":
        target = cos_t - p["m"]
    elif kind == "sphereface":
        m = p["m"]
        theta = np.arccos(cos_t)
        k = np.floor(m * theta / math.pi)
        target = (-1.0) ** k * np.cos(m * theta) - 2.0 * k
    elif kind == "arcface":
        target = arcface_target(cos_t, p["m"], bool(p["easy_margin"]))
    elif kind == "combined":
        theta = np.arccos(cos_t)
        target = np.cos(p["m1"] * theta + p["m2"]) - p["m3"]
    elif kind == "svam":
        t = p["t"]
        logits = np.where(frozen["support"], t * cos + t - 1.0, cos)
        return cross_entropy(s * with_target(logits, y, cos_t - p["m"]), y)
    elif kind == "magface":
        l_a, u_a, l_m, u_m = p["l_a"], p["u_a"], p["l_m"], p["u_m"]
        a = np.clip(np.linalg.norm(x, axis=1), l_a, u_a)      # not detached
        m_a = (u_m - l_m) / (u_a - l_a) * (a - l_a) + l_m
        target = arcface_target(cos_t, m_a, bool(p["easy_margin"]))
        g = a / u_a ** 2 + 1.0 / a
        ce = cross_entropy(s * with_target(cos, y, target), y)
        return ce + p["lambda_g"] * float(np.mean(g))
    else:
        raise HeadError(f"unknown head kind {kind!r}")
    return cross_entropy(s * with_target(cos, y, target), y)


# ---------------------------------------------------------------------------
# Central finite differences
# ---------------------------------------------------------------------------
# Step: h = REL_STEP * ||row||, the norm of the embedding / weight row that
# holds the entry.  Every normalised head depends on a row only through its
# direction, so the row norm is the natural length scale (an entry-relative
# step would collapse for entries near zero).  With h/||row|| = 1e-6 the O(h^2)
# truncation error is ~ (1e-6)^2 * s^2 ~ 1e-9 relative, and the round-off
# error ~ 1e-16 * |loss| / h stays ~1e-8 relative: both far below the 1e-3
# tolerance the Rust tests use.  (The optimum for central differences is
# ~ eps^(1/3) ~ 6e-6; 1e-6 errs towards small truncation error because the
# s=64 logits make the third derivatives large.)  Fixtures keep every branch
# point, clamp edge and max-tie at least ~1e-2 away (far more than h), so no
# stencil straddles a kink.
REL_STEP = 1e-6


def fd_grad(f, a):
    g = np.zeros_like(a)
    for r in range(a.shape[0]):
        h = REL_STEP * max(float(np.linalg.norm(a[r])), 1e-12)
        for c in range(a.shape[1]):
            old = a[r, c]
            a[r, c] = old + h
            fp = f()
            a[r, c] = old - h
            fm = f()
            a[r, c] = old
            g[r, c] = (fp - fm) / (2.0 * h)
    return g


def evaluate(case):
    kind, p = resolve_params(case["head"])
    x = np.array(case["embeddings"], dtype=np.float64)
    w = np.array(case["weights"], dtype=np.float64)
    y = np.array(case["labels"], dtype=np.int64)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1] or len(y) != x.shape[0]:
        raise HeadError("shape mismatch between embeddings, weights and labels")
    # Partial FC: the head over the kept classes only (labels renumbered to
    # their position among them); the other rows of W do not enter the loss,
    # so their finite-difference gradient is exactly 0. Shards do not change
    # the mathematics (the softmax over shards is the softmax over all kept
    # classes), so the reference ignores them.
    kept_rows = None
    yk = y
    partial = case.get("partial_fc")
    if partial is not None:
        sampled = partial.get("sampled")
        if sampled is None:
            raise HeadError("partial_fc: the reference needs the kept classes (partial_fc.sampled)")
        K = p.get("k", 1) if kind == "subcenter" else 1
        kept_rows = np.array([c * K + j for c in sampled for j in range(K)], dtype=np.int64)
        position = {c: i for i, c in enumerate(sampled)}
        yk = np.array([position[int(label)] for label in y], dtype=np.int64)

    def rows():
        return w if kept_rows is None else w[kept_rows]

    frozen = None
    if kind == "adaface":
        frozen = adaface_frozen(x, p, case.get("state"))
    if kind == "svam":
        frozen = svam_frozen(x, rows(), yk, p)

    def f():
        return head_loss(kind, p, x, rows(), yk, frozen)

    out = {"loss": f(),
           "grad_embeddings": fd_grad(f, x).tolist(),
           "grad_weights": fd_grad(f, w).tolist()}
    if kind == "adaface":
        out["state"] = frozen["state"]
    if partial is not None:
        out["sampled_classes"] = list(map(int, partial["sampled"]))
    return out


def compare(ours, theirs):
    """Relative loss gap and gradient gaps scaled by the largest entry."""
    res = {"loss_rel": abs(ours["loss"] - theirs["loss"]) / max(abs(theirs["loss"]), 1e-300)}
    for key in ("grad_embeddings", "grad_weights"):
        a, b = np.array(ours[key]), np.array(theirs[key])
        res[key] = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
    if "state" in theirs:
        res["state_rel"] = max(abs(ours["state"][k] - theirs["state"][k]) / abs(theirs["state"][k])
                               for k in ("batch_mean", "batch_std"))
    return res


# ---------------------------------------------------------------------------
# Fixture generation
# ---------------------------------------------------------------------------

def random_unit(rng, d):
    v = rng.standard_normal(d)
    return v / np.linalg.norm(v)


def make_weights(rng, rows, d, lo=1.0, hi=2.0):
    return np.stack([random_unit(rng, d) * rng.uniform(lo, hi) for _ in range(rows)])


def embedding_at_angle(rng, w_row, theta, norm):
    """A vector of the given norm at angle theta from w_row, random otherwise."""
    wh = w_row / np.linalg.norm(w_row)
    u = rng.standard_normal(len(wh))
    u -= (u @ wh) * wh
    u /= np.linalg.norm(u)
    return norm * (math.cos(theta) * wh + math.sin(theta) * u)


def build_case(rng, head, d, n_rows, labels, norms, thetas=None, target_rows=None,
               w_norm=(1.0, 2.0)):
    """Weights with norms in w_norm; embeddings with the given norms.

    thetas[i] (or None) fixes the angle between x_i and weight row
    target_rows[i] (default labels[i]); otherwise x_i's direction is random.
    """
    w = make_weights(rng, n_rows, d, *w_norm)
    xs = []
    for i, (lab, nrm) in enumerate(zip(labels, norms)):
        th = None if thetas is None else thetas[i]
        if th is None:
            xs.append(random_unit(rng, d) * nrm)
        else:
            row = lab if target_rows is None else target_rows[i]
            xs.append(embedding_at_angle(rng, w[row], th, nrm))
    return {"head": head, "embeddings": np.array(xs).tolist(),
            "weights": w.tolist(), "labels": list(map(int, labels))}


def safety_margins(case, frozen=None):
    """Distances of the input from every kink of its head (smaller = worse)."""
    kind, p = resolve_params(case["head"])
    x = np.array(case["embeddings"])
    w = np.array(case["weights"])
    y = np.array(case["labels"])
    idx = np.arange(len(y))
    out = {}
    if kind == "softmax":
        return out
    raw = unit_rows(x) @ unit_rows(w).T
    if kind == "subcenter":
        K = p["k"]
        r = np.sort(raw.reshape(len(y), -1, K), axis=2)
        out["subcenter_tie_gap"] = float(np.min(r[:, :, -1] - r[:, :, -2]))
        cls = r[:, :, -1]
    else:
        cls = raw
    out["cos_to_pm1"] = float(np.min(1.0 - np.abs(cls)))
    ct = cls[idx, y]
    theta = np.arccos(ct)
    if kind in ("arcface", "subcenter", "magface"):
        if kind == "magface":
            nrm = np.linalg.norm(x, axis=1)
            out["norm_to_clamp_edge"] = float(np.min(np.minimum(np.abs(nrm - p["l_a"]),
                                                                np.abs(nrm - p["u_a"]))))
            a = np.clip(nrm, p["l_a"], p["u_a"])
            m = (p["u_m"] - p["l_m"]) / (p["u_a"] - p["l_a"]) * (a - p["l_a"]) + p["l_m"]
        else:
            m = p["m"]
        if p["easy_margin"]:
            out["cos_to_branch"] = float(np.min(np.abs(ct)))
        else:
            out["cos_to_branch"] = float(np.min(np.abs(ct - np.cos(math.pi - m))))
    if kind == "sphereface":
        v = p["m"] * theta / math.pi
        out["m_theta_over_pi_to_int"] = float(np.min(np.abs(v - np.round(v))))
    if kind == "combined":
        # cos(m1*theta + m2) has its extremum at m1*theta + m2 = pi; keep clear.
        out["angle_to_pi"] = float(np.min(np.abs(p["m1"] * theta + p["m2"] - math.pi)))
    if kind == "svam":
        # The indicator is a step: no stencil may cross cos_ik = cos_iy - m.
        gap = np.abs(raw - (raw[idx, y] - p["m"])[:, None])
        gap[idx, y] = np.inf
        out["support_vector_boundary"] = float(np.min(gap))
    if kind == "adaface":
        eps = p["eps"]
        tp = theta - p["m"] * frozen["s_hat"]
        out["theta_prime_to_clip"] = float(np.min(np.minimum(tp - eps, math.pi - eps - tp)))
    return out


MIN_MARGIN = 1e-2


def kept_only(case):
    """A Partial FC case restricted to its kept classes (what the head sees)."""
    partial = case.get("partial_fc")
    if partial is None:
        return case
    kind, p = resolve_params(case["head"])
    K = p.get("k", 1) if kind == "subcenter" else 1
    sampled = partial["sampled"]
    w = [case["weights"][c * K + j] for c in sampled for j in range(K)]
    position = {c: i for i, c in enumerate(sampled)}
    return dict(case, weights=w, labels=[position[label] for label in case["labels"]], partial_fc=None)


def fixture_cases():
    """(name, description, builder) in a fixed order; each builder gets its own rng."""
    cases = []

    def add(name, desc, fn):
        cases.append((name, desc, fn))

    def rnorms(rng, b, lo=5.0, hi=60.0):
        return rng.uniform(lo, hi, size=b)

    # --- softmax -----------------------------------------------------------
    add("softmax_default", "plain linear logits, norms 5-60 (large logits)",
        lambda r: build_case(r, {"kind": "softmax"}, 6, 4, [0, 1, 3, 2, 1], rnorms(r, 5)))
    add("softmax_small", "plain linear logits with small inputs so the loss is moderate",
        lambda r: build_case(r, {"kind": "softmax"}, 5, 3, [2, 0, 1, 1], r.uniform(0.3, 1.2, 4),
                             w_norm=(0.3, 1.0)))
    # --- normface ----------------------------------------------------------
    add("normface_default", "s=64",
        lambda r: build_case(r, {"kind": "normface"}, 6, 3, [0, 2, 1, 1], rnorms(r, 4)))
    add("normface_s30", "s=30",
        lambda r: build_case(r, {"kind": "normface", "s": 30.0}, 5, 4, [3, 1, 0, 2, 3],
                             rnorms(r, 5)))
    # --- sphereface --------------------------------------------------------
    add("sphereface_default", "m=4, targets in k=0,1,1,2,3 intervals",
        lambda r: build_case(r, {"kind": "sphereface"}, 6, 4, [0, 1, 2, 3, 1], rnorms(r, 5),
                             thetas=[0.45, 1.05, 1.40, 1.95, 2.60]))
    add("sphereface_m3_s30", "m=3, s=30, targets in k=0,1,2",
        lambda r: build_case(r, {"kind": "sphereface", "s": 30.0, "m": 3.0}, 5, 3,
                             [2, 0, 1, 0], rnorms(r, 4), thetas=[0.6, 1.5, 2.5, 1.2]))
    # --- cosface -----------------------------------------------------------
    add("cosface_default", "s=64, m=0.4",
        lambda r: build_case(r, {"kind": "cosface"}, 6, 3, [1, 0, 2, 0], rnorms(r, 4)))
    add("cosface_s30_m035", "s=30, m=0.35",
        lambda r: build_case(r, {"kind": "cosface", "s": 30.0, "m": 0.35}, 8, 5,
                             [4, 0, 2, 1, 3, 0], rnorms(r, 6)))
    # --- arcface -----------------------------------------------------------
    add("arcface_default", "s=64, m=0.5, easy_margin=false, all targets on the cos(theta+m) branch",
        lambda r: build_case(r, {"kind": "arcface"}, 6, 4, [0, 3, 1, 2], rnorms(r, 4),
                             thetas=[0.7, 1.3, 2.0, 1.0]))
    add("arcface_s32_m03", "s=32, m=0.3",
        lambda r: build_case(r, {"kind": "arcface", "s": 32.0, "m": 0.3}, 7, 3,
                             [2, 2, 0, 1, 1], rnorms(r, 5), thetas=[0.5, 1.6, 2.3, 0.9, None]))
    add("arcface_fallback", "two targets with theta+m > pi (fallback cos - m sin(pi-m)) mixed with normal ones",
        lambda r: build_case(r, {"kind": "arcface"}, 6, 4, [1, 0, 3, 2, 1], rnorms(r, 5),
                             thetas=[2.85, 0.9, 1.6, 2.95, 0.4]))
    add("arcface_easy_margin", "easy_margin=true, targets with cos<0 (plain cos) and cos>0 (cos(theta+m))",
        lambda r: build_case(r, {"kind": "arcface", "easy_margin": True}, 5, 3,
                             [0, 1, 2, 0], rnorms(r, 4), thetas=[0.7, 2.0, 1.2, 2.5]))
    add("arcface_no_easy_margin", "easy_margin=false (explicit), targets with cos<0 and cos>0, incl. one fallback",
        lambda r: build_case(r, {"kind": "arcface", "easy_margin": False}, 5, 3,
                             [0, 1, 2, 0], rnorms(r, 4), thetas=[0.7, 2.0, 1.2, 2.9]))
    # --- combined ----------------------------------------------------------
    for nm, (m1, m2, m3), th in (("combined_arc", (1.0, 0.5, 0.0), [0.6, 1.2, 1.9, 2.3]),
                                 ("combined_cos", (1.0, 0.0, 0.4), [0.5, 1.4, 2.1, 2.8]),
                                 ("combined_mixed", (0.9, 0.4, 0.15), [0.7, 1.5, 2.2, 2.6])):
        add(nm, f"(m1,m2,m3)=({m1},{m2},{m3}), s default",
            lambda r, m1=m1, m2=m2, m3=m3, th=th:
            build_case(r, {"kind": "combined", "m1": m1, "m2": m2, "m3": m3}, 6, 4,
                       [0, 1, 2, 3], rnorms(r, 4), thetas=th))
    # --- subcenter ---------------------------------------------------------
    add("subcenter_default", "K=3 (default), C=3, random directions",
        lambda r: build_case(r, {"kind": "subcenter"}, 6, 9, [0, 2, 1, 1, 2], rnorms(r, 5)))
    add("subcenter_k2", "K=2, C=4, one target forced close to sub-centre 1 of its class",
        lambda r: build_case(r, {"kind": "subcenter", "k": 2}, 5, 8, [3, 0, 1, 2], rnorms(r, 4),
                             thetas=[None, 0.5, None, 0.8], target_rows=[None, 1, None, 5]))
    # --- magface -----------------------------------------------------------
    add("magface_default", "defaults (easy_margin=true), all norms inside (l_a,u_a)",
        lambda r: build_case(r, {"kind": "magface"}, 6, 3, [0, 1, 2, 1, 0],
                             r.uniform(15.0, 100.0, 5), thetas=[0.6, 1.1, 2.2, 0.9, 1.9]))
    add("magface_clamp", "defaults; norms below l_a=10 and above u_a=110 mixed with inside ones",
        lambda r: build_case(r, {"kind": "magface"}, 6, 4, [0, 1, 2, 3, 1],
                             [6.0, 130.0, 40.0, 8.5, 150.0], thetas=[0.8, 1.2, 2.1, 1.7, 0.5]))
    add("magface_no_easy_margin", "easy_margin=false; clamp edges; a fallback target and cos<0 targets",
        lambda r: build_case(r, {"kind": "magface", "easy_margin": False}, 5, 3, [2, 0, 1, 0],
                             [7.0, 55.0, 125.0, 30.0], thetas=[2.9, 1.9, 0.6, 2.95]))
    add("magface_lm_um", "l_m=0.4, u_m=0.7 (bound s*K/(-g'(l_a)) ~ 19.4 <= lambda_g=35)",
        lambda r: build_case(r, {"kind": "magface", "l_m": 0.4, "u_m": 0.7}, 6, 3,
                             [1, 2, 0, 1], [12.0, 45.0, 90.0, 25.0],
                             thetas=[0.9, 1.4, 2.0, 0.4]))
    # --- adaface -----------------------------------------------------------
    add("adaface_batch1", "defaults, no input state (mu=20, sigma=100); output state feeds adaface_batch2",
        lambda r: build_case(r, {"kind": "adaface"}, 6, 4, [0, 1, 2, 3, 2], rnorms(r, 5)))
    add("adaface_batch2", "defaults, state = adaface_batch1's output state",
        None)  # built specially from batch1
    add("adaface_h_talpha", "h=0.5, t_alpha=0.2, state mu=30 sigma=15; one norm 120 so n clips at 100 (s_hat clips at +1)",
        lambda r: dict(build_case(r, {"kind": "adaface", "h": 0.5, "t_alpha": 0.2}, 5, 3,
                                  [0, 1, 2, 1], [12.0, 45.0, 28.0, 120.0],
                                  thetas=[0.8, 1.5, 2.0, 1.1]),
                       state={"batch_mean": 30.0, "batch_std": 15.0}))
    add("adaface_tiny_norm", "state mu=30 sigma=6; one sample with norm 3 so s_hat clips at -1 (one also clips at +1)",
        lambda r: dict(build_case(r, {"kind": "adaface"}, 6, 3, [1, 0, 2, 1],
                                  [3.0, 31.0, 27.0, 58.0], thetas=[1.2, 0.9, 1.7, 2.1]),
                       state={"batch_mean": 30.0, "batch_std": 6.0}))
    # --- svam --------------------------------------------------------------
    add("svam_default", "s=32, m=0.35, t=1.2; targets at several angles so some samples have many support vectors and some none",
        lambda r: build_case(r, {"kind": "svam"}, 6, 5, [0, 3, 1, 4, 2, 1], rnorms(r, 6),
                             thetas=[0.3, 1.2, 1.7, 0.8, 2.2, None]))
    add("svam_s64_m04_t15", "s=64, m=0.4, t=1.5, C=4",
        lambda r: build_case(r, {"kind": "svam", "s": 64.0, "m": 0.4, "t": 1.5}, 7, 4,
                             [1, 0, 3, 2, 0], rnorms(r, 5), thetas=[1.0, 1.9, 0.5, 1.4, None]))
    add("svam_t1", "t=1 (CosFace's logits; support vectors change nothing), s=30, m=0.35",
        lambda r: build_case(r, {"kind": "svam", "s": 30.0, "m": 0.35, "t": 1.0}, 5, 4,
                             [2, 1, 0, 3], rnorms(r, 4), thetas=[1.3, 0.6, 2.0, None]))
    # --- partial fc -------------------------------------------------------
    def with_partial(case, **partial):
        return dict(case, partial_fc=partial)

    add("partial_fc_arcface", "arcface defaults over 3 of 6 classes kept (the 2 positives + 1 negative), 2 shards of 4 and 2",
        lambda r: with_partial(build_case(r, {"kind": "arcface"}, 6, 6, [1, 4, 1, 4], rnorms(r, 4),
                                          thetas=[0.7, 1.3, 1.1, 0.9]),
                               shards=[4, 2], sampled=[1, 2, 4]))
    add("partial_fc_subcenter", "sub-center ArcFace K=2 over 3 of 5 classes kept, one shard",
        lambda r: with_partial(build_case(r, {"kind": "subcenter", "k": 2}, 5, 10, [0, 3, 3, 0], rnorms(r, 4)),
                               sampled=[0, 2, 3]))
    add("partial_fc_svam", "svam defaults over 5 of 7 classes kept, 3 shards (3, 2, 2): support vectors only among the kept classes",
        lambda r: with_partial(build_case(r, {"kind": "svam"}, 6, 7, [2, 5, 6, 2, 5], rnorms(r, 5),
                                          thetas=[0.6, 1.2, 0.9, 1.5, None]),
                               shards=[3, 2, 2], sampled=[0, 2, 4, 5, 6]))
    return cases


def generate(outdir):
    os.makedirs(outdir, exist_ok=True)
    cases = fixture_cases()
    made = {}
    for seed, (name, desc, fn) in enumerate(cases):
        rng = np.random.default_rng(20240 + seed)
        for attempt in range(200):
            if name == "adaface_batch2":
                prev_case, prev_out = made["adaface_batch1"]
                case = build_case(rng, {"kind": "adaface"}, 6, 4, [3, 2, 1, 0],
                                  rng.uniform(5.0, 60.0, 4))
                case["weights"] = prev_case["weights"]     # same head, next batch
                case["state"] = dict(prev_out["state"])
            else:
                case = fn(rng)
            kind, p = resolve_params(case["head"])
            frozen = None
            if kind == "adaface":
                x = np.array(case["embeddings"])
                frozen = adaface_frozen(x, p, case.get("state"))
            margins = safety_margins(kept_only(case), frozen)
            if all(v > MIN_MARGIN for v in margins.values()):
                break
        else:
            raise RuntimeError(f"{name}: could not draw a well-conditioned input")
        out = evaluate(case)
        made[name] = (case, out)
        with open(os.path.join(outdir, name + ".input.json"), "w") as fh:
            json.dump(case, fh, indent=1)
            fh.write("\n")
        with open(os.path.join(outdir, name + ".expected.json"), "w") as fh:
            json.dump(out, fh, indent=1)
            fh.write("\n")
        mtxt = ", ".join(f"{k}={v:.3g}" for k, v in margins.items())
        print(f"{name:26s} loss={out['loss']:.6g}  {mtxt}  ({desc})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", nargs="?", help="CASE.input.json")
    ap.add_argument("--generate", metavar="OUTDIR", help="write the fixture set")
    ap.add_argument("--check", nargs=2, metavar=("INPUT", "EXPECTED"),
                    help="compare with another expected file")
    a = ap.parse_args(argv)
    try:
        if a.generate:
            generate(a.generate)
        elif a.check:
            with open(a.check[0]) as fh:
                ours = evaluate(json.load(fh))
            with open(a.check[1]) as fh:
                theirs = json.load(fh)
            print(json.dumps(compare(ours, theirs), indent=1))
        elif a.input:
            with open(a.input) as fh:
                print(json.dumps(evaluate(json.load(fh)), indent=1))
        else:
            ap.error("give CASE.input.json, --check or --generate")
    except HeadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
