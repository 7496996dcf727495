"""Artificial-Hivemind similarity measurements (Jiang et al., 2025, arXiv 2510.22954).

* Intra-model: per prompt, the mean cosine similarity over the n(n-1)/2 pairs of one model's
  responses (the upper triangle of their similarity matrix).
* Histogram: those per-prompt means in 10 equal bins on [0, 1] (values below 0 count in the
  first bin, 1 in the last), as the paper's Fig. 3; and the share of prompts above 0.8.
* Inter-model: per prompt, 10 responses drawn at random (without replacement) from each of two
  models and the mean of the 10 x 10 cross similarities (Fig. 4).

Embeddings are unit-norm rows (``SentenceEncoder.encode``), so a dot product is a cosine.
"""

from __future__ import annotations

import numpy as np

HISTOGRAM_BINS = 10
HIGH_SIMILARITY = 0.8
CROSS_SAMPLES = 10


def mean_pairwise_similarity(embeddings) -> float:
    """Mean cosine over the pairs of unit rows float [n, D]; NaN for n < 2."""
    x = np.asarray(embeddings, np.float64)
    n = x.shape[0]
    if n < 2:
        return float("nan")
    similarity = x @ x.T
    return float(similarity[np.triu_indices(n, k=1)].mean())


def similarity_histogram(values, bins: int = HISTOGRAM_BINS) -> dict:
    """{"edges": bins+1 floats, "counts": bins ints, "fractions": bins floats} of ``values``
    (NaN dropped) on [0, 1], values outside clipped into the end bins."""
    values = np.asarray(values, np.float64)
    values = np.clip(values[~np.isnan(values)], 0.0, 1.0)
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    total = max(int(counts.sum()), 1)
    return {
        "edges": [round(float(edge), 6) for edge in edges],
        "counts": [int(count) for count in counts],
        "fractions": [float(count) / total for count in counts],
    }


def fraction_above(values, threshold: float = HIGH_SIMILARITY) -> float:
    """Share of the (non-NaN) values strictly above ``threshold``; NaN when there are none."""
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    return float(np.mean(values > threshold)) if values.size else float("nan")


def cross_model_similarity(first, second, rng: np.random.Generator, samples=CROSS_SAMPLES):
    """Mean cosine between min(samples, n) random rows of ``first`` [n, D] and min(samples, m)
    of ``second`` [m, D]; NaN when either is empty."""
    a, b = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if not len(a) or not len(b):
        return float("nan")
    a = a[rng.choice(len(a), size=min(samples, len(a)), replace=False)]
    b = b[rng.choice(len(b), size=min(samples, len(b)), replace=False)]
    return float((a @ b.T).mean())
