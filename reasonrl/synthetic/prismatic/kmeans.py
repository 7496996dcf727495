"""k-means in JAX: k-means++ initialisation (Arthur & Vassilvitskii 2007), then Lloyd steps.

    result = kmeans(features, valid, num_clusters=k, key=jax.random.key(seed), iterations=50)
    result.assignment      # int32 [N]: nearest centre of every row (-1 where not valid)

Everything runs in one jitted function (``lax.fori_loop`` over the centres to pick and over the
Lloyd iterations): the same features, k and key give the same clusters on any device. Distances
are squared Euclidean; on unit features that orders like cosine distance. A centre left with no
member keeps its previous position.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp


class KMeansResult(NamedTuple):
    """centres float32 [k, d]; assignment int32 [N] (-1 for invalid rows); inertia: the sum of
    the valid rows' squared distances to their centre."""

    centres: jax.Array
    assignment: jax.Array
    inertia: jax.Array


def squared_distances(points: jax.Array, centres: jax.Array) -> jax.Array:
    """float32 [N, k]: ||points_i - centres_j||² (clipped at 0)."""
    cross = points @ centres.T
    norms = jnp.sum(points**2, axis=1)[:, None] + jnp.sum(centres**2, axis=1)[None, :]
    return jnp.maximum(norms - 2.0 * cross, 0.0)


def kmeans_plus_plus(points: jax.Array, valid: jax.Array, num_clusters: int, key) -> jax.Array:
    """float32 [k, d] initial centres: the first a uniform valid row, each next one a valid row
    drawn with probability proportional to its squared distance to the nearest centre so far."""
    keys = jax.random.split(key, num_clusters)
    uniform = jnp.where(valid, 1.0, 0.0)
    first = jax.random.choice(keys[0], points.shape[0], p=uniform / uniform.sum())
    centres = jnp.zeros((num_clusters, points.shape[1]), points.dtype).at[0].set(points[first])
    nearest = jnp.where(valid, squared_distances(points, centres[:1])[:, 0], 0.0)

    def pick(index, state):
        centres, nearest = state
        weights = jnp.where(valid, nearest, 0.0)
        # All valid rows already centres (duplicates): fall back to uniform over valid rows.
        weights = jnp.where(weights.sum() > 0, weights, uniform)
        chosen = jax.random.choice(keys[index], points.shape[0], p=weights / weights.sum())
        centres = centres.at[index].set(points[chosen])
        distance = squared_distances(points, points[chosen][None])[:, 0]
        return centres, jnp.minimum(nearest, distance)

    centres, _ = jax.lax.fori_loop(1, num_clusters, pick, (centres, nearest))
    return centres


def lloyd_step(points: jax.Array, valid: jax.Array, centres: jax.Array) -> jax.Array:
    """One Lloyd update: every centre moves to the mean of its valid members (or stays)."""
    assignment = jnp.argmin(squared_distances(points, centres), axis=1)
    weights = valid.astype(points.dtype)
    sums = jax.ops.segment_sum(points * weights[:, None], assignment, centres.shape[0])
    counts = jax.ops.segment_sum(weights, assignment, centres.shape[0])
    return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centres)


@functools.partial(jax.jit, static_argnames=("num_clusters", "iterations"))
def kmeans(
    points: jax.Array, valid: jax.Array, *, num_clusters: int, key, iterations: int = 50
) -> KMeansResult:
    """k-means of the ``valid`` (bool [N]) rows of float32 [N, d] ``points``.

    Needs at least ``num_clusters`` valid rows (the caller checks; see ``select``).
    """
    centres = kmeans_plus_plus(points, valid, num_clusters, key)
    centres = jax.lax.fori_loop(0, iterations, lambda _, c: lloyd_step(points, valid, c), centres)
    distances = squared_distances(points, centres)
    assignment = jnp.argmin(distances, axis=1).astype(jnp.int32)
    inertia = jnp.sum(jnp.where(valid, jnp.min(distances, axis=1), 0.0))
    return KMeansResult(centres, jnp.where(valid, assignment, -1), inertia)
