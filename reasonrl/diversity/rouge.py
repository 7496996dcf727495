"""ROUGE-1 F-measure between texts, exactly as ``rouge_score.rouge_scorer.RougeScorer(["rouge1"])``
computes it (no stemming), with no dependency: the RL loop logs it per group on any install.

Tokens: the text lower-cased, every run of characters other than [a-z0-9] replaced by a space,
split on whitespace. F = 2PR / (P + R) with P, R the clipped unigram overlap over each side's
count (0 when either side has no token).
"""

from __future__ import annotations

import collections
import itertools
import re
from collections.abc import Sequence

_NON_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")


def rouge_tokens(text: str) -> list[str]:
    """The rouge-score tokens of ``text`` (see the module docstring)."""
    return _NON_ALPHANUMERIC.sub(" ", text.lower()).split()


def _fmeasure(first: collections.Counter, second: collections.Counter) -> float:
    overlap = sum((first & second).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(second.values()), overlap / sum(first.values())
    return 2 * precision * recall / (precision + recall)


def rouge1_fmeasure(first: str, second: str) -> float:
    """ROUGE-1 F-measure of two texts (symmetric)."""
    return _fmeasure(
        collections.Counter(rouge_tokens(first)), collections.Counter(rouge_tokens(second))
    )


def mean_pairwise_rouge1(texts: Sequence[str]) -> float:
    """Mean ROUGE-1 F over the n(n-1)/2 pairs of ``texts``; NaN for fewer than two."""
    counts = [collections.Counter(rouge_tokens(text)) for text in texts]
    scores = [_fmeasure(a, b) for a, b in itertools.combinations(counts, 2)]
    return float(sum(scores) / len(scores)) if scores else float("nan")
