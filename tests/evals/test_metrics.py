"""pass@k, maj@k and the summary built from sample records."""

import itertools
import math

import pytest

from evals.common import metrics, report
from reasonrl.rewards import Problem


def brute_force_pass_at_k(outcomes: list[bool], k: int) -> float:
    """Fraction of the k-subsets of the samples that contain a correct one."""
    subsets = list(itertools.combinations(outcomes, k))
    return sum(any(subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            assert metrics.pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(outcomes, k))


def test_pass_at_k_known_values():
    assert metrics.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert metrics.pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert metrics.pass_at_k(64, 0, 64) == 0.0
    assert metrics.pass_at_k(64, 1, 64) == 1.0
    expected = 1 - math.comb(95, 10) / math.comb(100, 10)
    assert metrics.pass_at_k(100, 5, 10) == pytest.approx(expected)


@pytest.mark.parametrize("n, c, k", [(4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        metrics.pass_at_k(n, c, k)


def test_k_values():
    assert metrics.k_values(1) == [1]
    assert metrics.k_values(8) == [1, 2, 4, 8]
    assert metrics.k_values(6) == [1, 2, 4, 6]


def test_majority_vote():
    assert metrics.majority_vote(["1", "2", "2"], [True, False, False]) is False
    assert metrics.majority_vote(["2", "1", "1"], [False, True, True]) is True
    # Tie between "1" and "2": the answer that occurs first wins.
    assert metrics.majority_vote(["1", "2", "2", "1"], [True, False, False, True]) is True
    assert metrics.majority_vote(["2", "1", "1", "2"], [False, True, True, False]) is False
    # Samples without an answer do not vote; no answer at all is wrong.
    assert metrics.majority_vote([None, None, "3"], [False, False, True]) is True
    assert metrics.majority_vote([None, None], [False, False]) is False


def _record(problem_id, sample, answer, correct, finish_reason="stop", num_tokens=10):
    return {
        "id": problem_id,
        "sample": sample,
        "completion": "",
        "answer": answer,
        "correct": correct,
        "status": "correct" if correct else "incorrect",
        "num_tokens": num_tokens,
        "finish_reason": finish_reason,
    }


def test_summary_from_records():
    problems = [
        Problem("a", "", "1", subject="Algebra", level=1),
        Problem("b", "", "2", subject="Geometry", level=3),
    ]
    records = [  # out of order on purpose: the summary sorts by sample index
        _record("b", 1, "5", False, "length", 30),
        _record("a", 0, "1", True),
        _record("a", 1, "1", True),
        _record("b", 0, "$2$", True),
    ]
    summary = report.summarize("math500", problems, records, num_samples=2)
    assert summary["pass@1"] == pytest.approx(0.75)
    assert summary["pass@k"] == {"1": pytest.approx(0.75), "2": pytest.approx(1.0)}
    assert summary["maj@k"] == {"1": 1.0, "2": 1.0}  # b: "2" vs "5" tie -> sample 0's "2"
    assert summary["mean_completion_tokens"] == pytest.approx(15.0)
    assert summary["truncation_rate"] == pytest.approx(0.25)
    assert summary["status_counts"] == {"correct": 3, "incorrect": 1}
    assert summary["by_level"] == {
        "1": {"num_problems": 1, "pass@1": 1.0},
        "3": {"num_problems": 1, "pass@1": 0.5},
    }
    assert summary["by_subject"]["Geometry"]["pass@1"] == 0.5
    scalars = report.summary_scalars(summary)
    assert scalars["math500/pass@2"] == pytest.approx(1.0)
    assert scalars["math500/level_3/pass@1"] == 0.5


def test_summary_rejects_missing_or_duplicated_samples():
    problems = [Problem("a", "", "1")]
    with pytest.raises(ValueError, match="expected 0..1"):
        report.summarize("aime24", problems, [_record("a", 0, "1", True)], num_samples=2)
    with pytest.raises(ValueError, match="expected 0..1"):
        report.summarize(
            "aime24",
            problems,
            [_record("a", 0, "1", True)] * 2 + [_record("a", 1, "1", True)],
            num_samples=2,
        )


def test_competition_summary_has_no_level_breakdown():
    summary = report.summarize(
        "aime24", [Problem("a", "", "1")], [_record("a", 0, None, False)], num_samples=1
    )
    assert "by_level" not in summary and "by_subject" not in summary
    assert summary["maj@k"] == {"1": 0.0}
