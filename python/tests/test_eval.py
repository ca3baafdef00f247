"""visage.roc against `visage eval roc --json`, visage.cluster against
`visage cluster`, on the same numbers; and their errors."""

import numpy as np
import pytest

import visage
from conftest import cli_json, embed_with_cli


def write_scores(path, scores, labels):
    with path.open("w") as f:
        f.write("score,label\n")
        for s, l in zip(scores, labels):
            f.write(f"{float(s)!r},{int(l)}\n")


@pytest.fixture(scope="module")
def real_pairs(app, photos):
    """Cosine scores of every pair of the bundled photos' largest faces, label = same person (from the file name)."""
    people, embeddings = [], []
    for path in photos:
        faces = app.get(path)
        if faces and "_and_" not in path.name and "_with_" not in path.name:
            people.append(path.stem.rsplit("_", 1)[0])
            embeddings.append(faces[0].normed_embedding.astype(np.float64))
    x = np.stack(embeddings)
    i, j = np.triu_indices(len(people), k=1)
    scores = np.einsum("ij,ij->i", x[i], x[j])
    labels = np.array([people[a] == people[b] for a, b in zip(i, j)])
    assert labels.sum() > 10 and (~labels).sum() > 50
    return scores, labels


def test_roc_equals_the_cli_on_real_pairs(cli, real_pairs, tmp_path):
    scores, labels = real_pairs
    path = tmp_path / "scores.csv"
    write_scores(path, scores, labels)
    expected = cli_json(cli, "eval", "roc", "--scores", path, "--json", "--far", "1e-4,1e-3,1e-1")
    got = visage.roc(scores, labels, fars=[1e-4, 1e-3, 1e-1])
    assert got == expected
    assert got["auc"] > 0.95


def test_roc_equals_the_cli_with_ties_and_default_fars(cli, tmp_path):
    rng = np.random.default_rng(7)
    scores = np.round(rng.normal(size=5000), 2)  # many ties
    labels = (rng.random(5000) < 0.3).astype(np.int64)
    scores[labels == 1] += 1.0
    path = tmp_path / "scores.csv"
    write_scores(path, scores, labels)
    expected = cli_json(cli, "eval", "roc", "--scores", path, "--json")
    got = visage.roc(scores, labels)
    assert got == expected
    assert [t["far"] for t in got["tar_at_far"]] == [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    # any numeric input: lists, float32 scores, bool labels
    as_lists = visage.roc(scores.tolist(), labels.astype(bool).tolist())
    assert as_lists == expected
    # float32 scores are widened exactly (rounding to float32 merges a few ties, so compare with the widened values)
    single = scores.astype(np.float32)
    assert visage.roc(single, labels.astype(bool)) == visage.roc(single.astype(np.float64).tolist(), labels)


@pytest.mark.parametrize(
    "scores, labels, fars, message",
    [
        ([0.1, 0.9], [0, 1, 1], None, "2 scores but 3 labels"),
        ([0.1, float("nan")], [0, 1], None, "score 1 is NaN"),
        ([0.1, float("inf")], [0, 1], None, "finite"),
        ([0.1, 0.9], [0, 2], None, "label 1 is 2: expected 0 or 1"),
        ([0.1, 0.9], [1, 1], None, "only genuine pairs"),
        ([0.1, 0.9], [0, 0], None, "only impostor pairs"),
        ([], [], None, "no scores"),
        ([0.1, 0.9], [0, 1], [1e-3, 2.0], "fars 2: expected rates between 0 and 1"),
        (["a", "b"], [0, 1], None, "expected numbers"),
        ([[0.1, 0.9]], [[0, 1]], None, "1-D"),
    ],
)
def test_roc_refuses_bad_input(scores, labels, fars, message):
    with pytest.raises(visage.Error, match=message):
        visage.roc(scores, labels, fars=fars)


@pytest.fixture(scope="module")
def embeddings(cli, faces_small, tmp_path_factory):
    """The unit embeddings `visage embed` writes for faces_small, and the .npy itself."""
    tmp = tmp_path_factory.mktemp("embed")
    embed_with_cli(cli, tmp, [p.resolve() for p in faces_small])
    path = tmp / "x.npy"
    return np.load(path), path


def cli_labels(cli, tmp_path, npy, *options):
    out = tmp_path / "labels.txt"
    cli("cluster", "--input", npy, "--output", out, *options)
    return np.array([int(line) for line in out.read_text().split()], dtype=np.int64)


@pytest.mark.parametrize(
    "cli_options, kwargs",
    [
        (["--method", "ahc", "--threshold", "0.6"], dict(method="ahc", threshold=0.6)),
        (["--method", "ahc", "--threshold", "0.6", "--linkage", "complete"], dict(method="ahc", threshold=0.6, linkage="complete")),
        (["--method", "ahc", "--k", "20", "--linkage", "single"], dict(method="ahc", k=20, linkage="single")),
        (["--method", "dbscan", "--eps", "0.5", "--min-samples", "3"], dict(method="dbscan", eps=0.5, min_samples=3)),
        (["--method", "dbscan", "--eps", "0.9", "--metric", "euclidean"], dict(method="dbscan", eps=0.9, metric="euclidean")),
        (["--method", "kmeans", "--k", "12", "--seed", "3", "--restarts", "4"], dict(method="kmeans", k=12, seed=3, restarts=4)),
    ],
)
def test_cluster_equals_the_cli(cli, embeddings, tmp_path, cli_options, kwargs):
    x, npy = embeddings
    expected = cli_labels(cli, tmp_path, npy, *cli_options)
    got = visage.cluster(x, **kwargs)
    assert got.dtype == np.int64 and got.shape == (x.shape[0],)
    assert np.array_equal(got, expected)
    assert len(set(got.tolist()) - {-1}) > 1


def test_cluster_groups_real_people_and_marks_noise(embeddings):
    x, _ = embeddings
    labels = visage.cluster(x, method="dbscan", eps=0.5, min_samples=5)
    assert (labels == -1).any() and labels.max() >= 1
    # float32 input and a list of lists give the same labels as float64
    assert np.array_equal(visage.cluster(x.astype(np.float32), method="dbscan", eps=0.5, min_samples=5), labels)
    small = x[:10]
    assert np.array_equal(visage.cluster(small.tolist(), method="ahc", threshold=0.6), visage.cluster(small, method="ahc", threshold=0.6))


@pytest.mark.parametrize(
    "x, kwargs, message",
    [
        (np.eye(3), dict(method="optics"), 'method "optics"'),
        (np.eye(3), dict(method="dbscan"), "method dbscan needs eps"),
        (np.eye(3), dict(method="dbscan", eps=-1.0), "eps must be ≥ 0 and min_samples ≥ 1"),
        (np.eye(3), dict(method="dbscan", eps=0.5, min_samples=0), "min_samples ≥ 1"),
        (np.eye(3), dict(method="dbscan", eps=0.5, min_samples=-2), "min_samples -2"),
        (np.eye(3), dict(method="ahc"), "exactly one of threshold T or k K"),
        (np.eye(3), dict(method="ahc", threshold=0.5, k=2), "exactly one of"),
        (np.eye(3), dict(method="kmeans"), "kmeans needs k"),
        (np.eye(3), dict(method="kmeans", k=4), "k 4 exceeds the 3 embeddings"),
        (np.eye(3), dict(method="ahc", threshold=0.5, metric="manhattan"), 'metric "manhattan"'),
        (np.eye(3), dict(method="ahc", threshold=0.5, linkage="ward"), 'linkage "ward"'),
        (np.zeros((0, 4)), dict(method="ahc", threshold=0.5), "empty matrix"),
        (np.ones(4), dict(method="ahc", threshold=0.5), "2-D"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), dict(method="ahc", threshold=0.5), "must be finite"),
        (np.array([["a", "b"]]), dict(method="ahc", threshold=0.5), "expected numbers"),
    ],
)
def test_cluster_refuses_bad_input(x, kwargs, message):
    with pytest.raises(visage.Error, match=message):
        visage.cluster(x, **kwargs)
