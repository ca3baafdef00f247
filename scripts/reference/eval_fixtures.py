#!/usr/bin/env python3
"""Reference fixtures for crates/visage-eval (independent of the Rust code).

Writes data and the numbers scikit-learn / NumPy give for them under
crates/visage-eval/tests/fixtures/. Deterministic (fixed seeds); run from the
repository root:

    pip install scikit-learn numpy
    python3 scripts/reference/eval_fixtures.py

Definitions (scikit-learn's conventions): accept score >= t; AUC =
sklearn roc_auc_score; EER = min over thresholds of max(FAR, FRR); TAR@FAR =
highest TPR among ROC points with FPR <= FAR; DBSCAN noise counts as one
singleton cluster per item in the cluster metrics.
"""
import json
import os
import pickle
import sys

import numpy as np
import sklearn
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans
from sklearn.metrics import normalized_mutual_info_score, roc_auc_score, roc_curve
from sklearn.metrics.cluster import pair_confusion_matrix

OUT = os.path.join("crates", "visage-eval", "tests", "fixtures")
FARS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]


def dump(name, obj):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


# ---------------------------------------------------------------- ROC
def roc_reference(scores, labels, fars=FARS):
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    eer = float(np.min(np.maximum(fpr, 1.0 - tpr)))
    tar = [{"far": far, "tar": float(np.max(tpr[fpr <= far]))} for far in fars]
    return {"auc": float(roc_auc_score(labels, scores)), "eer": eer, "tar_at_far": tar}


def write_scores(name, scores, labels, decimals=None):
    with open(os.path.join(OUT, name), "w") as f:
        f.write("score,label\n")
        for s, l in zip(scores, labels):
            f.write(("%.*f" % (decimals, s) if decimals is not None else repr(float(s))) + ",%d\n" % l)


def roc_fixtures(rng):
    cases = {
        # heavy ties: scores on a 0.01 grid, both classes share values
        "roc_ties": (rng.normal(0.45, 0.15, 3000), rng.normal(0.1, 0.15, 7000), 2),
        # continuous scores, enough impostors that FAR 1e-4 is meaningful
        "roc_continuous": (rng.normal(0.6, 0.12, 4000), rng.normal(0.0, 0.1, 40000), None),
        # few genuine pairs, integer-valued scores (ties everywhere)
        "roc_imbalanced": (rng.integers(3, 10, 25).astype(float), rng.integers(0, 6, 500).astype(float), 0),
    }
    for name, (gen, imp, dec) in cases.items():
        scores = np.concatenate([gen, imp])
        labels = np.concatenate([np.ones(len(gen), int), np.zeros(len(imp), int)])
        order = rng.permutation(len(scores))
        scores, labels = scores[order], labels[order]
        if dec is not None:
            scores = np.round(scores, dec)
        write_scores(name + ".csv", scores, labels, dec)
        # the reference reads back exactly what the file holds
        back = np.loadtxt(os.path.join(OUT, name + ".csv"), delimiter=",", skiprows=1)
        dump(name + ".expected.json", roc_reference(back[:, 0], back[:, 1].astype(int)))


# ---------------------------------------------------------------- cluster metrics
def cluster_metric_reference(truth, pred):
    # noise (-1) -> one singleton cluster per item, on both sides
    def singletons(labels):
        labels = labels.copy()
        fresh = labels.max() + 1
        for i in np.where(labels == -1)[0]:
            labels[i] = fresh
            fresh += 1
        return labels

    t, p = singletons(truth), singletons(pred)
    (tn, fp), (fn, tp) = pair_confusion_matrix(t, p) // 2
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    # B-cubed, item by item (independent of the contingency formula)
    same_t = t[:, None] == t[None, :]
    same_p = p[:, None] == p[None, :]
    both = (same_t & same_p).sum(1)
    bp = float(np.mean(both / same_p.sum(1)))
    br = float(np.mean(both / same_t.sum(1)))
    bf = 2 * bp * br / (bp + br)
    return {
        "pairwise_precision": float(precision), "pairwise_recall": float(recall), "pairwise_f": float(f),
        "bcubed_precision": bp, "bcubed_recall": br, "bcubed_f": bf,
        "nmi": float(normalized_mutual_info_score(t, p)),
    }


def write_labels(name, labels):
    np.savetxt(os.path.join(OUT, name), np.asarray(labels, dtype=np.int64), fmt="%d")


def metric_fixtures(rng):
    n = 400
    truth = rng.integers(0, 25, n)
    pred = truth.copy()
    flip = rng.random(n) < 0.3
    pred[flip] = rng.integers(0, 30, flip.sum())
    pred[rng.random(n) < 0.1] = -1
    write_labels("metrics_truth.txt", truth)
    write_labels("metrics_pred.txt", pred)
    dump("metrics.expected.json", cluster_metric_reference(truth, pred))


# ---------------------------------------------------------------- clustering
def face_like_embeddings(rng, identities, per_id, dim, spread, noise_points):
    centres = rng.normal(size=(identities, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rows, truth = [], []
    for i in range(identities):
        k = rng.integers(max(2, per_id // 2), per_id + per_id // 2 + 1)
        x = centres[i] + spread * rng.normal(size=(k, dim)) / np.sqrt(dim)
        x *= rng.uniform(10, 30, size=(k, 1))  # magnitudes, as MagFace features have
        rows.append(x)
        truth += [i] * k
    noise = rng.normal(size=(noise_points, dim)) * 20 / np.sqrt(dim)
    rows.append(noise)
    truth += [-1] * noise_points
    x = np.concatenate(rows).astype(np.float32)
    order = rng.permutation(len(x))
    return x[order], np.asarray(truth)[order]


def clustering_fixtures(rng):
    x, truth = face_like_embeddings(rng, identities=12, per_id=20, dim=32, spread=0.6, noise_points=20)
    np.save(os.path.join(OUT, "cluster_x.npy"), x)
    write_labels("cluster_truth.txt", truth)
    x64 = x.astype(np.float64)  # visage computes in float64 from the float32 file
    cases = {}

    def add(name, labels, args):
        write_labels("cluster_%s.txt" % name, labels)
        cases[name] = args

    add("dbscan_cosine", DBSCAN(eps=0.25, min_samples=5, metric="cosine").fit_predict(x64),
        ["--method", "dbscan", "--metric", "cosine", "--eps", "0.25", "--min-samples", "5"])
    add("dbscan_euclidean", DBSCAN(eps=14.0, min_samples=4, metric="euclidean").fit_predict(x64),
        ["--method", "dbscan", "--metric", "euclidean", "--eps", "14.0", "--min-samples", "4"])
    for linkage in ["average", "complete", "single"]:
        add("ahc_%s_cosine_t" % linkage,
            AgglomerativeClustering(n_clusters=None, distance_threshold=0.5, metric="cosine", linkage=linkage).fit_predict(x64),
            ["--method", "ahc", "--metric", "cosine", "--linkage", linkage, "--threshold", "0.5"])
    add("ahc_average_euclidean_k",
        AgglomerativeClustering(n_clusters=15, metric="euclidean", linkage="average").fit_predict(x64),
        ["--method", "ahc", "--metric", "euclidean", "--linkage", "average", "--k", "15"])
    # k-means on the identities only (well separated after normalising), cosine = normalised rows
    keep = truth >= 0
    xk = x64[keep]
    np.save(os.path.join(OUT, "kmeans_x.npy"), x[keep])
    xn = xk / np.linalg.norm(xk, axis=1, keepdims=True)
    km = KMeans(n_clusters=12, n_init=10, random_state=0).fit(xn)
    write_labels("cluster_kmeans_cosine.txt", km.labels_)
    dump("cluster_cases.json", {"cases": cases, "kmeans_cosine": {"k": 12, "inertia": float(km.inertia_)}})


# ---------------------------------------------------------------- ERC
def erc_reference(scores, labels, quality, target_fmr=1e-3, fractions=None):
    """FNMR of retained genuine pairs vs fraction of genuine pairs rejected
    (lowest pair quality first, stable), threshold fixed on all pairs."""
    if fractions is None:
        fractions = np.round(np.arange(0, 96) / 100.0, 2)
    fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)
    threshold = thr[np.where(fpr <= target_fmr)[0][-1]]
    g = labels == 1
    gs, gq = scores[g], quality[g]
    order = np.argsort(gq, kind="stable")
    fnmr = []
    for r in fractions:
        drop = int(np.floor(r * len(gs) + 1e-9))
        kept = gs[order[drop:]]
        fnmr.append(float(np.mean(kept < threshold)))
    area = float(np.trapezoid(fnmr, fractions))
    return {"threshold": float(threshold), "fractions": [float(f) for f in fractions], "fnmr": fnmr, "area": area}


def erc_fixtures(rng):
    n_gen, n_imp = 600, 6000
    q_gen = rng.uniform(0, 1, (n_gen, 2))
    q_imp = rng.uniform(0, 1, (n_imp, 2))
    # genuine scores improve with the pair's quality; impostors do not
    s_gen = 0.2 + 0.5 * q_gen.min(1) + rng.normal(0, 0.12, n_gen)
    s_imp = rng.normal(0.0, 0.1, n_imp)
    noise_q = rng.uniform(0, 1, (n_gen + n_imp, 2))  # an uninformative quality
    scores = np.round(np.concatenate([s_gen, s_imp]), 6)
    labels = np.concatenate([np.ones(n_gen, int), np.zeros(n_imp, int)])
    mag = np.round(np.concatenate([q_gen, q_imp]) * 20 + 10, 6)
    rnd = np.round(noise_q, 6)
    with open(os.path.join(OUT, "erc_pairs.csv"), "w") as f:
        f.write("score,label,magnitude_1,magnitude_2,random_1,random_2\n")
        for i in range(len(scores)):
            f.write("%.6f,%d,%.6f,%.6f,%.6f,%.6f\n" % (scores[i], labels[i], mag[i, 0], mag[i, 1], rnd[i, 0], rnd[i, 1]))
    back = np.loadtxt(os.path.join(OUT, "erc_pairs.csv"), delimiter=",", skiprows=1)
    s, l = back[:, 0], back[:, 1].astype(int)
    dump("erc.expected.json", {
        "magnitude": erc_reference(s, l, np.minimum(back[:, 2], back[:, 3])),
        "random": erc_reference(s, l, np.minimum(back[:, 4], back[:, 5])),
    })


# ---------------------------------------------------------------- verification (insightface LFW protocol)
def kfold_accuracy(dist, issame, n_folds=10):
    thresholds = np.arange(0, 4, 0.01)
    n = len(issame)
    sizes = np.full(n_folds, n // n_folds)
    sizes[: n % n_folds] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    accs, best_thresholds = [], []

    def acc(th, d, same):
        pred = d < th
        return np.sum(pred == same) / len(same)

    for k in range(n_folds):
        test = np.arange(bounds[k], bounds[k + 1])
        train = np.setdiff1d(np.arange(n), test)
        train_acc = [acc(t, dist[train], issame[train]) for t in thresholds]
        best = int(np.argmax(train_acc))
        best_thresholds.append(float(thresholds[best]))
        accs.append(acc(thresholds[best], dist[test], issame[test]))
    return float(np.mean(accs)), float(np.std(accs)), [float(a) for a in accs], best_thresholds


def verification_fixtures(rng):
    pairs, dim = 300, 16
    ids = rng.normal(size=(pairs, dim))
    issame = rng.random(pairs) < 0.5
    emb, flip = [], []
    for i in range(pairs):
        a = ids[i] + 0.9 * rng.normal(size=dim)
        b = (ids[i] if issame[i] else rng.normal(size=dim)) + 0.9 * rng.normal(size=dim)
        for e in (a, b):
            emb.append(e * rng.uniform(5, 15))
            flip.append((e + 0.2 * rng.normal(size=dim)) * rng.uniform(5, 15))
    emb, flip = np.asarray(emb, np.float32), np.asarray(flip, np.float32)
    np.save(os.path.join(OUT, "verify_emb.npy"), emb)
    np.save(os.path.join(OUT, "verify_emb_flip.npy"), flip)
    with open(os.path.join(OUT, "verify_pairs.txt"), "w") as f:
        for i in range(pairs):
            f.write("%d %d %d\n" % (2 * i, 2 * i + 1, int(issame[i])))
    summed = emb.astype(np.float64) + flip.astype(np.float64)
    summed /= np.linalg.norm(summed, axis=1, keepdims=True)
    dist = np.sum((summed[0::2] - summed[1::2]) ** 2, 1)
    mean, std, accs, ths = kfold_accuracy(dist, issame)
    dump("verify.expected.json", {"accuracy_mean": mean, "accuracy_std": std, "fold_accuracy": accs, "fold_threshold": ths})
    # the same pairs as an insightface-style .bin: (list of encoded images, list of is-same)
    images = []
    for i in range(2 * pairs):
        # stand-ins for JPEG bytes: varying lengths, short and long opcodes, one empty
        images.append(bytes(rng.integers(0, 256, int(rng.integers(0, 400)) if i else 0, dtype=np.uint8)))
    issame_list = [bool(s) for s in issame]
    for proto in (2, 4):
        with open(os.path.join(OUT, "verify_p%d.bin" % proto), "wb") as f:
            pickle.dump((images, issame_list), f, protocol=proto)
    dump("verify_bin.expected.json", {
        "n_images": len(images),
        "lengths": [len(b) for b in images],
        "first_bytes": [list(b[:4]) for b in images],
        "issame": issame_list,
    })


# ---------------------------------------------------------------- IJB templates
def ijb_fixtures(rng):
    dim, subjects = 16, 30
    centres = rng.normal(size=(subjects, dim))
    faces, tid_mid, scores_det = [], [], []
    template_subject = {}
    tid = 0
    for s in range(subjects):
        for _ in range(3):  # 3 templates per subject
            tid += 1
            template_subject[tid] = s
            for m in range(int(rng.integers(1, 4))):  # media
                mid = tid * 10 + m
                for _ in range(int(rng.integers(1, 4))):  # frames per media
                    name = "%d.jpg" % len(faces)
                    faces.append((centres[s] + 1.2 * rng.normal(size=dim)) * rng.uniform(5, 25))
                    tid_mid.append((name, tid, mid))
                    scores_det.append(round(float(rng.uniform(0.5, 1.0)), 4))
    feats = np.asarray(faces, np.float32)
    meta = os.path.join(OUT, "ijb", "meta")
    os.makedirs(meta, exist_ok=True)
    np.save(os.path.join(OUT, "ijb", "features.npy"), feats)
    with open(os.path.join(meta, "tiny_face_tid_mid.txt"), "w") as f:
        for name, t, m in tid_mid:
            f.write("%s %d %d\n" % (name, t, m))
    with open(os.path.join(meta, "tiny_name_5pts_score.txt"), "w") as f:
        for (name, _, _), sc in zip(tid_mid, scores_det):
            pts = " ".join("%.1f" % v for v in rng.uniform(30, 80, 10))
            f.write("%s %s %.4f\n" % (name, pts, sc))
    tids = sorted(template_subject)
    pairs = []
    for a in tids:
        for b in tids:
            if a < b and (template_subject[a] == template_subject[b] or rng.random() < 0.15):
                pairs.append((a, b, int(template_subject[a] == template_subject[b])))
    with open(os.path.join(meta, "tiny_template_pair_label.txt"), "w") as f:
        for a, b, l in pairs:
            f.write("%d %d %d\n" % (a, b, l))

    def templates(norm_score, det_weight):
        x = feats.astype(np.float64)
        if not norm_score:
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
        if det_weight:
            x = x * np.asarray(scores_det)[:, None]
        out = {}
        for t in tids:
            rows = [i for i, r in enumerate(tid_mid) if r[1] == t]
            media = sorted(set(tid_mid[i][2] for i in rows))
            acc = sum(np.mean(x[[i for i in rows if tid_mid[i][2] == m]], axis=0) for m in media)
            out[t] = acc / np.linalg.norm(acc)
        return out

    expected = {}
    for key, (ns, dw) in {"plain": (False, False), "norm_score": (True, False), "detector_score": (False, True)}.items():
        tf = templates(ns, dw)
        s = np.array([tf[a] @ tf[b] for a, b, _ in pairs])
        l = np.array([p[2] for p in pairs])
        expected[key] = roc_reference(s, l, [1e-3, 1e-2, 1e-1])
    # 1:N: gallery = first template of each of the first 20 subjects; probes = the rest
    gallery = [t for t in tids if (t - 1) % 3 == 0 and template_subject[t] < 20]
    probes = [t for t in tids if t not in gallery]
    with open(os.path.join(meta, "tiny_1N_gallery.csv"), "w") as f:
        f.write("TEMPLATE_ID,SUBJECT_ID\n")
        for t in gallery:
            f.write("%d,%d\n" % (t, template_subject[t]))
    with open(os.path.join(meta, "tiny_1N_probe.csv"), "w") as f:
        f.write("TEMPLATE_ID,SUBJECT_ID\n")
        for t in probes:
            f.write("%d,%d\n" % (t, template_subject[t]))
    tf = templates(False, False)
    g = np.array([tf[t] for t in gallery])
    gs = np.array([template_subject[t] for t in gallery])
    ranks, mated_top, nonmated_top = [], [], []
    for t in probes:
        sims = g @ tf[t]
        subj = template_subject[t]
        if subj in gs:
            true = sims[gs == subj].max()
            ranks.append(1 + int(np.sum(sims > true)))
            top = int(np.argmax(sims))
            mated_top.append(sims[top] if gs[top] == subj else -np.inf)
        else:
            nonmated_top.append(sims.max())
    ranks = np.array(ranks)
    mated_top, nonmated_top = np.array(mated_top), np.array(nonmated_top)
    tpir = []
    for fpir in [0.01, 0.1]:
        # thresholds at every top score: accept >= t
        cand = np.unique(np.concatenate([mated_top[np.isfinite(mated_top)], nonmated_top, [np.inf]]))
        best = 0.0
        for th in cand:
            if np.mean(nonmated_top >= th) <= fpir:
                best = max(best, float(np.mean(mated_top >= th)))
        tpir.append({"fpir": fpir, "tpir": best})
    expected["identification"] = {"rank1": float(np.mean(ranks <= 1)), "rank5": float(np.mean(ranks <= 5)), "tpir_at_fpir": tpir}
    dump("ijb.expected.json", expected)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240607)
    roc_fixtures(rng)
    metric_fixtures(rng)
    clustering_fixtures(rng)
    erc_fixtures(rng)
    verification_fixtures(rng)
    ijb_fixtures(rng)
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write("python %s\nnumpy %s\nscikit-learn %s\n" % (sys.version.split()[0], np.__version__, sklearn.__version__))


if __name__ == "__main__":
    main()
