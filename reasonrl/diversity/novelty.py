"""NoveltyBench's scores of one prompt (`src/score.py` of novelty-bench/novelty-bench).

Given the partition of the k responses (:mod:`~reasonrl.diversity.partition`) and a quality
u_i in 1..10 per response:

    g_i       = u_i if response i opens a new class, else 0          (duplicates count 0)
    utility_k = Σ_{i<=k} p^(i-1) g_i / Σ_{i<=k} p^(i-1)              (patience p = 0.8)
    distinct_k = number of classes

The normaliser is Σ p^(i-1), not k. Without a quality model u_i = 1, and utility_k is a
patience-weighted count of new classes. A raw reward becomes u by NoveltyBench's buckets:
u = 1 + |{thresholds t : t < reward}| (``bisect_left``), with the 9 thresholds it fitted to
Skywork-Reward-Gemma-2-27B-v0.2 (:data:`NOVELTYBENCH_REWARD_THRESHOLDS`) unless others are
given for another reward model's scale.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

PATIENCE = 0.8
NOVELTYBENCH_REWARD_THRESHOLDS = (
    -7.71875,
    -6.28125,
    -6.0,
    -5.71875,
    -5.5,
    -5.0,
    -4.375,
    -3.4375,
    -2.046875,
)


@dataclasses.dataclass(frozen=True)
class NoveltyScores:
    """distinct_k, utility_k and the per-response g_i (``generation_scores``) of one prompt."""

    distinct: int
    utility: float
    generation_scores: tuple[float, ...]


def quality_buckets(rewards, thresholds: Sequence[float] = NOVELTYBENCH_REWARD_THRESHOLDS):
    """int [N] in 1..len(thresholds)+1: ``bisect_left(thresholds, reward) + 1`` per reward."""
    edges = np.asarray(thresholds, np.float64)
    if edges.ndim != 1 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"reward thresholds must increase strictly, got {list(thresholds)}")
    return np.searchsorted(edges, np.asarray(rewards, np.float64), side="left") + 1


def novelty_scores(
    classes: Sequence[int], qualities: Sequence[float] | None = None, patience: float = PATIENCE
) -> NoveltyScores:
    """Scores of one prompt from its responses' class ids (in sample order) and qualities
    (None: every u_i = 1)."""
    if not classes:
        raise ValueError("need at least one response")
    qualities = np.ones(len(classes)) if qualities is None else np.asarray(qualities, float)
    opened, scores = 0, []
    for class_id, quality in zip(classes, qualities, strict=True):
        if not 0 <= class_id <= opened:
            raise ValueError(f"class ids must be numbered in opening order, got {list(classes)}")
        is_new = class_id == opened
        opened += is_new
        scores.append(float(quality) if is_new else 0.0)
    weights = patience ** np.arange(len(classes))
    utility = float(np.dot(weights, scores) / weights.sum())
    return NoveltyScores(distinct=opened, utility=utility, generation_scores=tuple(scores))
