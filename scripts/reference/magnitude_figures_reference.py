#!/usr/bin/env python3
"""Reference numbers for crates/visage-eval/src/magnitude_figures (independent
of the Rust code): the quantile bin edges, the leave-one-out cosine to the
cluster centre, GCN-V's kNN confidence and Spearman's rho of each with the
magnitude, on the fixed input the unit tests use. Prints them; the tests
quote the printed values. Run from anywhere:

    pip install numpy scipy
    python3 scripts/reference/magnitude_figures_reference.py

Printed with scipy 1.17.1 and numpy 2.4.6.
"""
import numpy as np
from scipy.stats import spearmanr

# bins.rs: quantile edges (NumPy's default linear method).
print("quantile edges", np.quantile([9, 3, 7, 1, 5, 11, 13, 15], [0.25, 0.5, 0.75]), np.quantile([4, 1, 2], [1 / 3, 2 / 3]))

# centrality.rs: two clusters (0, 1) and one noise face (-1).
X = np.array([[3.0, 0.2, 0.1], [1.0, 0.5, 0.0], [2.0, -0.3, 0.4], [0.5, 0.4, 0.6],
              [0.1, 2.5, 0.2], [-0.2, 1.0, 0.3], [0.6, 1.5, -0.2], [0.3, 0.3, 1.0]])
y = np.array([0, 0, 0, 0, 1, 1, 1, -1])
n = len(X)
U = X / np.linalg.norm(X, axis=1, keepdims=True)
m = np.linalg.norm(X, axis=1)

# Cosine to the mean direction of the other members of the face's cluster.
centre = []
for i in range(n):
    others = U[(y == y[i]) & (np.arange(n) != i)]
    if y[i] < 0 or len(others) == 0:
        continue
    s = others.sum(0)
    centre.append(U[i] @ s / np.linalg.norm(s))

# GCN-V (Yang et al., CVPR 2020, eq. 1) over the k most similar other faces.
S = U @ U.T
k = 3
conf = []
for i in range(n):
    nb = sorted((j for j in range(n) if j != i), key=lambda j: (-S[i, j], j))[:k]
    conf.append(np.mean([S[i, j] if (y[i] >= 0 and y[j] == y[i]) else -S[i, j] for j in nb]))

print("centre cosines", [repr(float(v)) for v in centre])
print("knn confidences", [repr(float(v)) for v in conf])
print("spearman centre", repr(float(spearmanr(m[:7], centre).statistic)))
print("spearman knn", repr(float(spearmanr(m, conf).statistic)))
