"""The Vendi score (Friedman & Dieng, 2023) of a set of embeddings, computed through the d x d
covariance, never the N x N kernel.

With X the N rows scaled to unit length, the cosine kernel K = X Xᵀ / N and the covariance
C = Xᵀ X / N (d x d) have the same non-zero eigenvalues λ (they sum to trace = 1), so

    vendi(X) = exp(-Σ λ log λ)        (0 · log 0 = 0)

is the effective number of distinct items: N identical rows give 1, N orthonormal rows give N.
Cost O(N d² + d³) and memory O(d²), whatever N (G-Vendi runs it on many gradient features).
"""

from __future__ import annotations

import numpy as np


def vendi_score(embeddings) -> float:
    """exp(entropy of the eigenvalues of the covariance of the unit-normalised rows).

    Args:
        embeddings: float [N, d], N >= 1 rows, each finite and non-zero (its direction is
            what counts: rows are scaled to unit length here).

    Raises:
        ValueError: no rows, not 2-D, or a zero or non-finite row.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"need embeddings [N >= 1, d], got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise ValueError("every embedding row must be finite and non-zero")
    x = x / norms
    covariance = x.T @ x / x.shape[0]  # [d, d], trace 1
    eigenvalues = np.clip(np.linalg.eigvalsh(covariance), 0.0, None)
    positive = eigenvalues[eigenvalues > 0]
    return float(np.exp(-np.sum(positive * np.log(positive))))
