"""The spectrum evals' metrics against independent references on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from reasonrl.spectrum import metrics


def reference_ece(correct, incorrect, threshold=0.01, bins=10):
    """Equal-count bins over the pooled probabilities above the threshold, written with sorted
    arrays (the official code uses percentiles and inclusive edges)."""
    correct = np.exp(np.asarray(correct))
    incorrect = np.exp(np.asarray(incorrect))
    probs = np.concatenate([correct[correct > threshold], incorrect[incorrect > threshold]])
    is_true = np.concatenate(
        [np.ones((correct > threshold).sum()), np.zeros((incorrect > threshold).sum())]
    )
    edges = np.percentile(probs, np.linspace(0, 100, min(bins, len(probs)) + 1))
    gaps = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (probs >= low) & (probs <= high)
        if inside.any():
            gaps.append(abs(probs[inside].mean() - is_true[inside].mean()))
    return float(np.mean(gaps))


def test_ece_matches_reference_on_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(20):
        correct = np.log(rng.uniform(0.001, 1, size=rng.integers(5, 200)))
        incorrect = np.log(rng.uniform(0.001, 0.6, size=rng.integers(5, 400)))
        ours = metrics.expected_calibration_error(correct, incorrect)
        assert ours == pytest.approx(reference_ece(correct, incorrect), abs=1e-6)


def test_ece_of_a_calibrated_predictor_is_small():
    rng = np.random.default_rng(1)
    # Positions with 2 options at probabilities (p, 1-p); the true one drawn with those odds.
    p = rng.uniform(0.05, 0.95, size=20000)
    first_true = rng.uniform(size=p.size) < p
    correct = np.log(np.where(first_true, p, 1 - p))
    incorrect = np.log(np.where(first_true, 1 - p, p))
    assert metrics.expected_calibration_error(correct, incorrect) < 0.02
    # Overconfident: the same odds claimed as 0.99 / 0.01 for whichever is more likely.
    claimed_true = np.where((p > 0.5) == first_true, 0.99, 0.01)
    assert metrics.expected_calibration_error(np.log(claimed_true), np.log(1 - claimed_true)) > 0.1


def test_js_divergence_matches_scipy():
    rng = np.random.default_rng(2)
    for size in (2, 3, 7):
        p, q = rng.dirichlet(np.ones(size)), rng.dirichlet(np.ones(size))
        eps = metrics.JS_EPS
        p_eps, q_eps = (p + eps) / (p + eps).sum(), (q + eps) / (q + eps).sum()
        expected = jensenshannon(p_eps, q_eps) ** 2  # scipy returns the distance, natural log
        assert metrics.js_divergence(p, q) == pytest.approx(expected, rel=1e-9)
    assert metrics.js_divergence([1, 0], [1, 0]) == pytest.approx(0, abs=1e-9)
    assert metrics.js_divergence([1, 0], [0, 1]) == pytest.approx(np.log(2), rel=1e-4)


def test_distributional_alignment_renormalises_over_candidates():
    target = np.array([0.5, 0.3, 0.2])
    model = np.array([0.2, 0.1, 0.1])  # 0.6 of the mass elsewhere
    result = metrics.distributional_alignment(np.log(model), target)
    assert result["coverage"] == pytest.approx(0.4)
    assert result["js_divergence"] == pytest.approx(metrics.js_divergence(target, model / 0.4))
    tiny = metrics.distributional_alignment(np.log(model) - 800, target)  # underflows exp()
    assert tiny["js_divergence"] == pytest.approx(result["js_divergence"])


def test_sample_coverage():
    samples = ["apple", " pear", "apple", "kiwi", "plum ", "apple", "x", "pear"]
    result = metrics.sample_coverage(samples, ["apple", "pear", "plum", "fig"])
    assert result["percent_valid"] == pytest.approx(6 / 8)
    assert result["unique_gens_pct"] == pytest.approx(3 / 6)
    assert result["yield"] == 3
    assert metrics.sample_coverage(["no"], ["yes"]) == {
        "percent_valid": 0.0,
        "unique_gens_pct": 0.0,
        "yield": 0.0,
    }


def test_output_scores_and_steerability_headline():
    rng = np.random.default_rng(3)
    scores = []
    per_output = []
    for index in (0, 1, 2, 0, 1):
        n = int(rng.integers(1, 5))
        logprobs = np.log(rng.uniform(0.05, 1, size=n))
        match = rng.uniform(size=n) < 0.6
        top = np.sort(np.log(rng.dirichlet(np.ones(8), size=n)), axis=-1)[:, ::-1]
        is_target = np.zeros((n, 8), bool)
        is_target[:, 0] = match
        scores.append(metrics.output_score(index, logprobs, match, top, is_target))
        per_output.append((index, -logprobs.sum(), match.all(), match[0], match.mean()))
    summary = metrics.steerability(scores)
    later = [o for o in per_output if o[0] >= 1]
    assert summary["loss_geq_1"] == pytest.approx(np.mean([o[1] for o in later]))
    assert summary["all_acc_geq_1"] == pytest.approx(np.mean([o[2] for o in later]))
    assert summary["first_acc_geq_1"] == pytest.approx(np.mean([o[3] for o in later]))
    assert summary["acc_geq_1"] == pytest.approx(np.mean([o[4] for o in later]))
    assert summary["loss"] == pytest.approx(np.mean([o[1] for o in per_output]))
    assert summary["num_outputs_geq_1"] == 3
    # The ECE pools the index >= 1 outputs' true-token and other-token log-probabilities.
    later_scores = [s for s in scores if s.index >= 1]
    expected = reference_ece(
        np.concatenate([s.correct_logprobs for s in later_scores]),
        np.concatenate([s.incorrect_logprobs for s in later_scores]),
    )
    assert summary["ece"] == pytest.approx(expected)
    # Other tokens below the 1% threshold are not kept.
    assert all(np.all(s.incorrect_logprobs > np.log(0.01)) for s in scores)
