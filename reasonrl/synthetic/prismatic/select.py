"""Choosing a budget of examples that covers the sparse regions of gradient space.

The budget rule (:func:`cluster_quotas`, "water-filling"): with k-means clusters of sizes n_c,
every cluster gets the same quota q, capped by its size, with q the largest level such that
Σ_c min(n_c, q) <= budget; the r examples left over go one each to the r sparsest clusters that
still have unselected members (ascending size, ties by cluster index). So a sparse cluster
(n_c <= q) is taken whole and the budget the dense clusters would have absorbed in proportion to
their size is spread over all regions. Inside a cluster the members are taken in a seeded random
order (:func:`example_priorities`, from the seed and each example's id: independent of the file
order).

:func:`greedy_selection` is the reference method: starting from the first valid example, add the
example that most increases G-Vendi, until the budget. It evaluates the d x d spectrum of every
candidate at every step, O(budget · N · d³): a baseline for small d and N, not for a full dataset.
:func:`random_subset_scores` gives G-Vendi of random subsets of the same size, to compare with.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from reasonrl.errors import ReasonRLError
from reasonrl.sampling.keys import stable_hash
from reasonrl.synthetic.prismatic.gvendi import masked_vendi, spectral_entropy


class SelectionError(ReasonRLError, ValueError):
    """A budget or cluster count that the features cannot satisfy (the message names the flag)."""


def cluster_quotas(sizes: Sequence[int], budget: int) -> np.ndarray:
    """int64 [k]: examples to take from each cluster (see the module docstring).

    Raises:
        SelectionError: ``budget`` < 1 or more than the examples there are (--budget).
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if budget < 1 or budget > sizes.sum():
        raise SelectionError(f"--budget must be in [1, {int(sizes.sum())}], got {budget}")
    levels = np.arange(int(sizes.max()) + 1)
    taken = np.minimum(sizes[None, :], levels[:, None]).sum(axis=1)  # [levels]
    level = int(levels[taken <= budget].max())
    quotas = np.minimum(sizes, level)
    left = budget - int(quotas.sum())
    open_clusters = np.flatnonzero(sizes > quotas)
    sparsest_first = open_clusters[np.argsort(sizes[open_clusters], kind="stable")]
    quotas[sparsest_first[:left]] += 1
    return quotas


def example_priorities(ids: Sequence[str], seed: int) -> np.ndarray:
    """int64 [N] order keys of the examples inside their cluster (lower is taken first)."""
    return np.asarray([stable_hash(f"{seed}:{example_id}") for example_id in ids], np.int64)


def select_by_clusters(
    assignment: np.ndarray, quotas: np.ndarray, priorities: np.ndarray
) -> np.ndarray:
    """Sorted int64 indices of the examples taken: in every cluster c (assignment int [N], -1 =
    none), the ``quotas[c]`` members of lowest priority (ties by index)."""
    assignment = np.asarray(assignment)
    order = np.lexsort((np.arange(len(assignment)), priorities, assignment))
    clusters = assignment[order]
    starts = np.searchsorted(clusters, clusters, side="left")
    rank = np.arange(len(order)) - starts
    member = clusters >= 0
    taken = member & (rank < np.where(member, quotas[np.maximum(clusters, 0)], 0))
    return np.sort(order[taken])


@functools.partial(jax.jit, static_argnames=("budget", "num_subsets"))
def random_subset_scores(
    unit_features: jax.Array, valid: jax.Array, key, *, budget: int, num_subsets: int
) -> jax.Array:
    """float32 [num_subsets]: G-Vendi of uniform random ``budget``-subsets of the valid rows."""
    keys = jax.random.split(key, num_subsets)

    def subset_mask(subset_key):
        scores = jnp.where(valid, jax.random.uniform(subset_key, valid.shape), 2.0)
        threshold = jnp.sort(scores)[budget - 1]
        return scores <= threshold

    return masked_vendi(unit_features, jax.vmap(subset_mask)(keys))


@functools.partial(jax.jit, static_argnames=("budget",))
def greedy_selection(unit_features: jax.Array, valid: jax.Array, *, budget: int) -> jax.Array:
    """int32 [budget] indices, in the order the greedy G-Vendi selector adds them.

    Step t adds the unselected valid row i maximising the entropy of (C_t + ĝ_i ĝ_iᵀ) / (t + 1),
    C_t the sum of the selected rows' outer products (ties: lowest index); the first pick is the
    first valid row. Needs ``budget`` <= valid rows.
    """
    outer = jnp.einsum("nd,ne->nde", unit_features, unit_features)  # [N, d, d]
    first = jnp.argmax(valid)
    chosen = jnp.zeros(budget, jnp.int32).at[0].set(first)
    available = valid.at[first].set(False)

    def add(step, state):
        chosen, available, total = state
        entropies = jax.vmap(lambda o: spectral_entropy((total + o) / (step + 1.0)))(outer)
        best = jnp.argmax(jnp.where(available, entropies, -jnp.inf))
        return chosen.at[step].set(best), available.at[best].set(False), total + outer[best]

    chosen, _, _ = jax.lax.fori_loop(1, budget, add, (chosen, available, outer[first]))
    return chosen
