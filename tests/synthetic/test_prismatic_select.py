"""G-Vendi, k-means, the budget rule and the selectors against independent NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reasonrl.synthetic.prismatic import select
from reasonrl.synthetic.prismatic.gvendi import g_vendi, masked_vendi
from reasonrl.synthetic.prismatic.kmeans import kmeans, kmeans_plus_plus, lloyd_step


def unit(rows):
    rows = np.asarray(rows, np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def kernel_vendi(features):
    """Reference: eigenvalues of the N x N cosine kernel / N (the form G-Vendi avoids)."""
    x = unit(features)
    eigenvalues = np.linalg.eigvalsh(x @ x.T / len(x))
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-(eigenvalues * np.log(eigenvalues)).sum()))


def test_g_vendi_identical_orthonormal_and_kernel_reference():
    rng = np.random.default_rng(0)
    row = rng.standard_normal(16)
    assert g_vendi(np.tile(row, (5, 1))) == pytest.approx(1.0, abs=1e-9)
    assert g_vendi(np.eye(16)[:7] * 3.0) == pytest.approx(7.0, rel=1e-9)
    features = rng.standard_normal((40, 16))
    assert g_vendi(features) == pytest.approx(kernel_vendi(features), rel=1e-9)
    valid = rng.random(40) < 0.5
    assert g_vendi(features, valid) == pytest.approx(kernel_vendi(features[valid]), rel=1e-9)


def test_masked_vendi_matches_g_vendi_per_mask():
    rng = np.random.default_rng(1)
    features = unit(rng.standard_normal((30, 8)))
    masks = rng.random((3, 30)) < 0.4
    scores = np.asarray(masked_vendi(jnp.asarray(features, jnp.float32), jnp.asarray(masks)))
    expected = [kernel_vendi(features[m]) for m in masks]
    np.testing.assert_allclose(scores, expected, rtol=1e-4)


def numpy_lloyd(points, valid, centres, iterations):
    for _ in range(iterations):
        distances = ((points[:, None, :] - centres[None]) ** 2).sum(-1)
        assignment = distances.argmin(1)
        for c in range(len(centres)):
            members = points[(assignment == c) & valid]
            if len(members):
                centres[c] = members.mean(0)
    distances = ((points[:, None, :] - centres[None]) ** 2).sum(-1)
    return centres, np.where(valid, distances.argmin(1), -1)


def blobs(seed=0, per_blob=20, num_blobs=4, dim=6):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_blobs, dim)) * 10
    labels = np.repeat(np.arange(num_blobs), per_blob)
    return (centres[labels] + rng.standard_normal((len(labels), dim))).astype(np.float32), labels


def test_kmeans_matches_numpy_lloyd_from_the_same_start():
    points, _ = blobs()
    valid = np.ones(len(points), bool)
    valid[::7] = False
    key = jax.random.key(3)
    start = np.asarray(kmeans_plus_plus(jnp.asarray(points), jnp.asarray(valid), 5, key))
    result = kmeans(jnp.asarray(points), jnp.asarray(valid), num_clusters=5, key=key, iterations=8)
    centres, assignment = numpy_lloyd(points.astype(np.float64), valid, start.astype(float), 8)
    np.testing.assert_allclose(np.asarray(result.centres), centres, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(result.assignment), assignment)
    # k-means++ picks data rows, only valid ones.
    valid_rows = points[valid]
    assert all(np.any(np.all(valid_rows == c, axis=1)) for c in start)


def test_kmeans_plus_plus_finds_every_separated_blob():
    points, labels = blobs(seed=1)
    valid = jnp.ones(len(points), bool)
    for seed in range(3):
        result = kmeans(jnp.asarray(points), valid, num_clusters=4, key=jax.random.key(seed))
        assignment = np.asarray(result.assignment)
        pairs = set(zip(labels.tolist(), assignment.tolist()))
        assert len(pairs) == 4 and len({a for _, a in pairs}) == 4


def test_lloyd_step_keeps_an_empty_centre():
    points = jnp.asarray([[0.0, 0.0], [0.1, 0.0]])
    centres = jnp.asarray([[0.0, 0.0], [50.0, 50.0]])
    moved = lloyd_step(points, jnp.ones(2, bool), centres)
    np.testing.assert_allclose(np.asarray(moved), [[0.05, 0.0], [50.0, 50.0]])


def round_robin_quotas(sizes, budget):
    """Reference: hand out one example at a time to the open cluster with the smallest quota so
    far (ties: smaller cluster, then lower index)."""
    quotas = [0] * len(sizes)
    for _ in range(budget):
        open_clusters = [c for c in range(len(sizes)) if quotas[c] < sizes[c]]
        c = min(open_clusters, key=lambda c: (quotas[c], sizes[c], c))
        quotas[c] += 1
    return quotas


@pytest.mark.parametrize(
    "sizes", [[5, 12, 14, 1], [3, 3, 3], [1, 100, 2, 40, 7], [9], [4, 4, 1, 30, 2, 2]]
)
def test_cluster_quotas_equal_the_round_robin_reference(sizes):
    for budget in range(1, sum(sizes) + 1):
        quotas = select.cluster_quotas(sizes, budget)
        assert quotas.tolist() == round_robin_quotas(sizes, budget), budget
        assert quotas.sum() == budget


def test_cluster_quotas_take_sparse_clusters_whole():
    assert select.cluster_quotas([2, 50, 50, 1], 20).tolist() == [2, 9, 8, 1]
    with pytest.raises(select.SelectionError, match="--budget"):
        select.cluster_quotas([2, 3], 6)


def test_select_by_clusters_takes_the_lowest_priorities_per_cluster():
    rng = np.random.default_rng(2)
    assignment = rng.integers(-1, 4, size=60)
    priorities = rng.integers(0, 5, size=60)  # many ties: broken by index
    sizes = np.bincount(assignment[assignment >= 0], minlength=4)
    quotas = select.cluster_quotas(sizes, 17)
    chosen = select.select_by_clusters(assignment, quotas, priorities)
    expected = []
    for c in range(4):
        members = sorted(np.flatnonzero(assignment == c), key=lambda i: (priorities[i], i))
        expected += members[: quotas[c]]
    assert chosen.tolist() == sorted(expected)


def test_example_priorities_depend_on_seed_and_id_only():
    a = select.example_priorities(["x", "y", "z"], 0)
    assert select.example_priorities(["z", "x"], 0).tolist() == [a[2], a[0]]
    assert select.example_priorities(["x", "y", "z"], 1).tolist() != a.tolist()


def numpy_greedy(features, valid, budget):
    chosen = [int(np.flatnonzero(valid)[0])]
    while len(chosen) < budget:
        candidates = [i for i in np.flatnonzero(valid) if i not in chosen]
        scores = [kernel_vendi(features[chosen + [i]]) for i in candidates]
        chosen.append(int(candidates[int(np.argmax(scores))]))
    return chosen


def test_greedy_selection_matches_a_numpy_reference():
    rng = np.random.default_rng(4)
    features = unit(rng.standard_normal((25, 6)))
    valid = np.ones(25, bool)
    valid[[0, 3]] = False
    got = select.greedy_selection(jnp.asarray(features, jnp.float32), jnp.asarray(valid), budget=6)
    assert np.asarray(got).tolist() == numpy_greedy(features, valid, 6)


def test_random_subsets_use_valid_rows_only():
    rng = np.random.default_rng(5)
    features = jnp.asarray(unit(rng.standard_normal((30, 8))), jnp.float32)
    valid = np.zeros(30, bool)
    valid[[1, 4, 9, 16, 25]] = True  # budget 5 = every valid row
    scores = select.random_subset_scores(
        features, jnp.asarray(valid), jax.random.key(0), budget=5, num_subsets=4
    )
    expected = kernel_vendi(np.asarray(features)[valid])
    np.testing.assert_allclose(np.asarray(scores), [expected] * 4, rtol=1e-4)
    valid[:] = True
    scores = np.asarray(
        select.random_subset_scores(
            features, jnp.asarray(valid), jax.random.key(0), budget=5, num_subsets=200
        )
    )
    reference = [
        kernel_vendi(np.asarray(features)[rng.choice(30, 5, replace=False)]) for _ in range(400)
    ]
    assert len(np.unique(np.round(scores, 5))) > 150  # distinct subsets
    spread = np.sqrt(np.var(scores) / len(scores) + np.var(reference) / len(reference))
    assert abs(scores.mean() - np.mean(reference)) < 4 * spread
