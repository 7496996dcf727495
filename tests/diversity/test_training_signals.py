"""Diversity next to accuracy: the RL loop's per-group signals and the math evals' summary."""

from itertools import combinations

import numpy as np
import pytest

from evals.common import report
from reasonrl.rewards import Problem
from reasonrl.rl.loop import _rollout_metrics


def _rollout(texts):
    n = len(texts)
    return {
        "rewards": np.ones(n, np.float32),
        "correct": np.ones(n, np.float32),
        "completion_lengths": np.full(n, 5, np.int32),
        "truncated": np.zeros(n, bool),
        "completion_text": np.asarray(texts, dtype=object),
    }


def test_rollout_metrics_log_distinct_answers_and_rouge_per_group():
    texts = [
        r"so \boxed{4}",
        r"hence \boxed{4}",
        r"so \boxed{4.}",  # normalised to 4 as well
        "no answer here",
        r"\boxed{7} done",
        r"\boxed{8} done",
        r"\boxed{9} done",
        r"\boxed{10} done",
    ]
    metrics = _rollout_metrics(_rollout(texts), group_size=4)
    # group 1: {4, None} of 4; group 2: {7, 8, 9, 10} of 4
    assert metrics["rollout/distinct_answer_fraction"] == pytest.approx((2 / 4 + 1) / 2)
    # ROUGE-1 tokens, no word repeated within a text: F = |shared| / 3 for two 3-token texts.
    tokens = ["so boxed 4", "hence boxed 4", "so boxed 4", "no answer here"]
    tokens += [f"boxed {i} done" for i in (7, 8, 9, 10)]
    groups = [tokens[:4], tokens[4:]]
    means = [
        np.mean([len(set(a.split()) & set(b.split())) / 3 for a, b in combinations(group, 2)])
        for group in groups
    ]
    assert metrics["rollout/pairwise_rouge1"] == pytest.approx(np.mean(means))
    assert means == pytest.approx([(2 / 3 + 1 + 2 / 3) / 6, 2 / 3])
    assert "rollout/pairwise_rouge1" not in _rollout_metrics(_rollout(texts))  # no group size


def _record(problem_id, sample, answer, correct):
    return {
        "id": problem_id,
        "sample": sample,
        "completion": "",
        "answer": answer,
        "correct": correct,
        "status": "correct" if correct else "incorrect",
        "num_tokens": 3,
        "finish_reason": "stop",
    }


def test_math_summary_has_distinct_answers_and_the_pass_gap():
    problems = [Problem("a", "", "1"), Problem("b", "", "2")]
    records = [
        _record("a", 0, "1", True),
        _record("a", 1, "$1$", True),  # the same answer, normalised
        _record("a", 2, "3", False),
        _record("a", 3, None, False),  # no answer: not an answer
        _record("b", 0, "5", False),
        _record("b", 1, "2", True),
        _record("b", 2, "6", False),
        _record("b", 3, "7", False),
    ]
    summary = report.summarize("aime24", problems, records, num_samples=4)
    assert summary["distinct_answers_per_problem"] == {"a": 2, "b": 4}
    assert summary["distinct_answers"] == 3.0
    assert summary["pass@1"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    for k, value in summary["pass@k"].items():
        assert summary["pass@k_gap"][k] == pytest.approx(value - summary["pass@1"])
    assert summary["pass@k_gap"]["1"] == 0.0 and summary["pass@k_gap"]["4"] == 1.0 - 0.375
    scalars = report.summary_scalars(summary)
    assert scalars["aime24/distinct_answers"] == 3.0
    assert scalars["aime24/pass@4_minus_pass@1"] == pytest.approx(0.625)
