"""Hivemind similarity, histogram, inter-model similarity and Vendi against NumPy references."""

import itertools

import numpy as np
import pytest

from reasonrl.diversity import (
    cross_model_similarity,
    fraction_above,
    mean_pairwise_similarity,
    similarity_histogram,
    vendi_score,
)


def _unit(rows):
    rows = np.asarray(rows, float)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_mean_pairwise_similarity_is_the_upper_triangle_mean():
    x = _unit(np.random.default_rng(0).normal(size=(7, 5)))
    pairs = [float(x[i] @ x[j]) for i, j in itertools.combinations(range(7), 2)]
    assert mean_pairwise_similarity(x) == pytest.approx(np.mean(pairs))
    assert mean_pairwise_similarity(np.ones((4, 3)) / np.sqrt(3)) == pytest.approx(1.0)
    assert np.isnan(mean_pairwise_similarity(x[:1]))


def test_histogram_bins_and_edges():
    values = [-0.2, 0.0, 0.05, 0.1, 0.35, 0.8, 0.8001, 0.95, 1.0, float("nan")]
    histogram = similarity_histogram(values)
    assert histogram["edges"] == pytest.approx(np.linspace(0, 1, 11).tolist())
    # [0, .1): -0.2 (clipped), 0, .05; [.1, .2): .1; [.3, .4): .35; [.8, .9): .8, .8001;
    # [.9, 1]: .95, 1.0 (the last bin is closed); NaN dropped.
    assert histogram["counts"] == [3, 1, 0, 1, 0, 0, 0, 0, 2, 2]
    assert sum(histogram["fractions"]) == pytest.approx(1.0)
    assert histogram["fractions"][0] == pytest.approx(3 / 9)


def test_fraction_above_is_strict():
    assert fraction_above([0.8, 0.81, 0.5, 0.9, float("nan")]) == pytest.approx(0.5)
    assert np.isnan(fraction_above([]))


def test_cross_model_similarity_draws_ten_from_each():
    rng = np.random.default_rng(1)
    a, b = _unit(rng.normal(size=(6, 4))), _unit(rng.normal(size=(3, 4)))
    # At most 10 rows each: every row is drawn, so the mean of the full cross matrix.
    assert cross_model_similarity(a, b, rng) == pytest.approx(float((a @ b.T).mean()))
    many_a, many_b = _unit(rng.normal(size=(50, 4))), _unit(rng.normal(size=(50, 4)))
    expected_rng, rng = np.random.default_rng(7), np.random.default_rng(7)
    rows_a = expected_rng.choice(50, size=10, replace=False)
    rows_b = expected_rng.choice(50, size=10, replace=False)
    expected = float((many_a[rows_a] @ many_b[rows_b].T).mean())
    assert cross_model_similarity(many_a, many_b, rng) == pytest.approx(expected)
    assert np.isnan(cross_model_similarity(a, b[:0], rng))


def _vendi_by_kernel(x):
    """Reference through the N x N kernel (what vendi_score must avoid building)."""
    x = _unit(x)
    eigenvalues = np.linalg.eigvalsh(x @ x.T / len(x))
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-np.sum(eigenvalues * np.log(eigenvalues))))


def test_vendi_identical_is_one_and_orthogonal_is_n():
    assert vendi_score(np.tile([[3.0, 4.0, 0.0]], (20, 1))) == pytest.approx(1.0)
    for n in (1, 2, 5, 16):
        assert vendi_score(np.eye(32)[:n] * 7.0) == pytest.approx(n)
    # Two groups of identical rows in orthogonal directions, sizes 3 and 1: exp(H(3/4, 1/4)).
    rows = np.array([[1, 0]] * 3 + [[0, 2]], float)
    assert vendi_score(rows) == pytest.approx(np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25))))


def test_vendi_equals_the_kernel_reference_and_ignores_scale():
    rng = np.random.default_rng(2)
    for n, d in ((5, 3), (12, 40), (30, 8)):
        x = rng.normal(size=(n, d))
        assert vendi_score(x) == pytest.approx(_vendi_by_kernel(x), rel=1e-9)
        assert vendi_score(x * rng.uniform(0.1, 10, size=(n, 1))) == pytest.approx(vendi_score(x))
    assert 1.0 <= vendi_score(rng.normal(size=(20000, 4))) <= 4.0  # d x d: N does not matter


def test_vendi_rejects_zero_or_empty_input():
    with pytest.raises(ValueError, match="non-zero"):
        vendi_score([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="N >= 1"):
        vendi_score(np.zeros((0, 3)))
