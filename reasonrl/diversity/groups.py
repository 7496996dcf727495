"""Per-group diversity signals the RL loop logs each step (cheap: no model, no grader).

Rows are group-major (row = group * G + sample), as rollouts are laid out. For each group of G
completions: the fraction of distinct final answers (distinct values / G; a completion without
an answer counts as one more value, "no answer") and the mean pairwise ROUGE-1 F of the
completions (:mod:`~reasonrl.diversity.rouge`). The step's signal is the mean over groups. A
policy collapsing onto one answer drives the first to 1/G and the second towards 1 before
accuracy moves.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from reasonrl.diversity.rouge import mean_pairwise_rouge1


def distinct_fraction(values: Sequence[Hashable]) -> float:
    """|distinct values| / |values| (None is a value like any other); NaN for none."""
    return len(set(values)) / len(values) if len(values) else float("nan")


def group_diversity(
    texts: Sequence[str], answers: Sequence[Hashable], group_size: int
) -> dict[str, float]:
    """{"distinct_answer_fraction", "pairwise_rouge1"}: means over the groups of ``group_size``
    consecutive rows (``answers``: each row's normalised final answer, None for none)."""
    if group_size < 1 or len(texts) % group_size or len(texts) != len(answers):
        raise ValueError(
            f"need as many texts as answers ({len(texts)}, {len(answers)}), a multiple of "
            f"group_size={group_size}"
        )
    starts = range(0, len(texts), group_size)
    fractions = [distinct_fraction(answers[s : s + group_size]) for s in starts]
    rouge = [mean_pairwise_rouge1(texts[s : s + group_size]) for s in starts]
    return {
        "distinct_answer_fraction": float(np.mean(fractions)) if fractions else float("nan"),
        "pairwise_rouge1": float(np.nanmean(rouge)) if group_size > 1 and rouge else float("nan"),
    }
