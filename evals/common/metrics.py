"""Accuracy metrics over k samples per problem.

* ``pass@k`` -- the unbiased estimator of Chen et al. (2021): with n samples of which c are
  correct, ``pass@k = 1 - C(n - c, k) / C(n, k)`` (the chance that k samples drawn without
  replacement from the n contain a correct one). ``pass@1`` is the mean per-sample accuracy c / n.
* ``maj@k`` -- majority vote over the *first k* samples of a problem: the normalised extracted
  answers vote (samples without an answer do not vote); a tie goes to the answer that occurs
  first among those samples (lowest sample index). The vote is correct when the sample that
  first gave the winning answer was graded correct. No answer at all counts as wrong.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def pass_at_k(num_samples: int, num_correct: int, k: int) -> float:
    """Unbiased pass@k of one problem: 1 - C(n - c, k) / C(n, k).

    Raises:
        ValueError: unless 0 <= c <= n and 1 <= k <= n.
    """
    if not 0 <= num_correct <= num_samples:
        raise ValueError(f"need 0 <= num_correct <= num_samples, got {num_correct}, {num_samples}")
    if not 1 <= k <= num_samples:
        raise ValueError(f"need 1 <= k <= num_samples={num_samples}, got k={k}")
    if num_samples - num_correct < k:
        return 1.0
    # Product form of C(n-c, k) / C(n, k): stable for large n, no huge integers.
    miss = 1.0
    for i in range(num_samples - num_correct + 1, num_samples + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def k_values(num_samples: int) -> list[int]:
    """1, 2, 4, ... up to ``num_samples``, plus ``num_samples`` itself when not a power of 2."""
    ks = [1 << i for i in range(num_samples.bit_length()) if (1 << i) <= num_samples]
    if ks[-1] != num_samples:
        ks.append(num_samples)
    return ks


def majority_vote(answers: Sequence[str | None], correct: Sequence[bool]) -> bool:
    """Whether the majority answer of these samples is correct (rules in the module docstring).

    Args:
        answers: each sample's normalised extracted answer, ``None`` when it has none.
        correct: each sample's grade.
    """
    votes = Counter(answer for answer in answers if answer is not None)
    if not votes:
        return False
    top = max(votes.values())
    for answer, is_correct in zip(answers, correct):
        if answer is not None and votes[answer] == top:
            return bool(is_correct)
    raise AssertionError("unreachable: a top-voted answer occurs among the samples")


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean; NaN for no values (so an empty group is visible, not zero)."""
    return float(sum(values) / len(values)) if values else math.nan
