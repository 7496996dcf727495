"""A seeded Rademacher (Johnson-Lindenstrauss) projection of a parameter pytree to d dimensions,
generated block by block and never materialised whole.

For a pytree g with P scalars in total, the projection is

    P g = (1 / sqrt(d)) * Σ_leaf Σ_block g[leaf, block] @ S(seed, leaf path, block)

where every leaf is flattened, cut into blocks of :data:`BLOCK_SIZE` scalars (the last one padded
with zeros) and ``S`` is a [BLOCK_SIZE, d] matrix of ±1 signs drawn from
``fold_in(fold_in(key(seed), stable_hash(leaf path)), block index)``. One block's signs exist at a
time (a ``lax.scan`` over the blocks of a leaf), so memory is O(BLOCK_SIZE * d) whatever P, and
an example's projection depends only on (seed, leaf paths, d): not on the batch it is in, the
batch size or the mesh. Signs are packed: one 32-bit random word gives 32 signs (d must be a
multiple of 32), so drawing them costs P * d / 32 random words.

E ||P g||² = ||g||², and for d dims the squared norm ratio stays within 1 ± eps with probability
at least 1 - 2 exp(-d (eps²/2 - eps³/3) / 2) (:func:`jl_failure_probability`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from reasonrl.errors import ReasonRLError
from reasonrl.sampling.keys import stable_hash

# Scalars of a leaf projected per scan step (a [BLOCK_SIZE, d] sign block lives at a time). Part
# of the projection's definition: changing it changes every feature.
BLOCK_SIZE = 4096
SIGN_BITS = 32


class ProjectionError(ReasonRLError, ValueError):
    """A projection dimension that cannot work."""


def check_dim(dim: int) -> None:
    """Raises ProjectionError unless ``dim`` is a positive multiple of 32 (--dim)."""
    if not isinstance(dim, int) or dim < SIGN_BITS or dim % SIGN_BITS:
        raise ProjectionError(f"--dim must be a positive multiple of {SIGN_BITS}, got {dim!r}")


def leaf_paths(tree) -> list[str]:
    """The stable names of ``tree``'s leaves (``jax.tree_util.keystr``), in leaf order."""
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def sign_block(leaf_key: jax.Array, block: jax.Array, dim: int) -> jax.Array:
    """float32 [BLOCK_SIZE, dim] of ±1: the signs of block ``block`` of a leaf."""
    words = jax.random.bits(
        jax.random.fold_in(leaf_key, block), (BLOCK_SIZE, dim // SIGN_BITS), jnp.uint32
    )
    shifts = jnp.arange(SIGN_BITS, dtype=jnp.uint32)
    bits = (words[:, :, None] >> shifts) & jnp.uint32(1)  # [BLOCK_SIZE, dim / 32, 32]
    return bits.reshape(BLOCK_SIZE, dim).astype(jnp.float32) * 2.0 - 1.0


def _project_leaf(values: jax.Array, leaf_key: jax.Array, dim: int) -> jax.Array:
    """Σ_block values[:, block] @ S(block), for values float [B, n] of one leaf -> [B, dim]."""
    rows, size = values.shape
    num_blocks = -(-size // BLOCK_SIZE)
    padded = jnp.pad(values.astype(jnp.float32), ((0, 0), (0, num_blocks * BLOCK_SIZE - size)))
    blocks = padded.reshape(rows, num_blocks, BLOCK_SIZE).transpose(1, 0, 2)

    def step(total, block_and_index):
        block_values, index = block_and_index
        product = jnp.dot(
            block_values, sign_block(leaf_key, index, dim), precision=jax.lax.Precision.HIGHEST
        )
        return total + product, None

    total, _ = jax.lax.scan(
        step, jnp.zeros((rows, dim), jnp.float32), (blocks, jnp.arange(num_blocks))
    )
    return total


def project(tree, seed: int, dim: int, *, batched: bool = True) -> jax.Array:
    """The projection of every example's pytree to ``dim`` dims (traceable; jit it).

    Args:
        tree: pytree of float arrays; with ``batched`` each leaf is [B, ...] (one row per
            example), else one example (leaves of any shape).
        seed: projection seed (the same for every example of a dataset).
        dim: output dimension, a multiple of 32.

    Returns:
        float32 [B, dim] (or [dim] when not batched): (1/sqrt(dim)) Σ_leaf leaf @ S_leaf.
    """
    check_dim(dim)
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    root = jax.random.key(seed)
    total = None
    for path, leaf in flat:  # over the pytree's leaves: unrolled at trace time
        values = leaf.reshape(leaf.shape[0], -1) if batched else leaf.reshape(1, -1)
        leaf_key = jax.random.fold_in(root, stable_hash(jax.tree_util.keystr(path)))
        part = _project_leaf(values, leaf_key, dim)
        total = part if total is None else total + part
    total = total / math.sqrt(dim)
    return total if batched else total[0]


def dense_matrix(tree, seed: int, dim: int):
    """The whole [P, dim] matrix (leaf order, row-major within a leaf) that :func:`project`
    applies, scaled by 1/sqrt(dim): for tests on tiny pytrees only (it is P x dim floats)."""
    check_dim(dim)
    root = jax.random.key(seed)
    parts = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        leaf_key = jax.random.fold_in(root, stable_hash(jax.tree_util.keystr(path)))
        size = math.prod(leaf.shape)
        num_blocks = -(-size // BLOCK_SIZE)
        signs = jnp.concatenate([sign_block(leaf_key, b, dim) for b in range(num_blocks)])
        parts.append(signs[:size])
    return jnp.concatenate(parts) / math.sqrt(dim)


def jl_failure_probability(dim: int, eps: float) -> float:
    """Upper bound on P(| ||Px||² / ||x||² - 1 | > eps) for one vector x (Achlioptas 2003)."""
    return min(1.0, 2.0 * math.exp(-dim * (eps**2 / 2 - eps**3 / 3) / 2))


def unit_rows(features: jax.Array, valid: jax.Array | None = None) -> jax.Array:
    """Rows scaled to unit length; rows that are zero or not ``valid`` (bool [B]) become zero."""
    norms = jnp.linalg.norm(features, axis=-1, keepdims=True)
    keep = norms > 0
    if valid is not None:
        keep = keep & valid[:, None]
    return jnp.where(keep, features / jnp.where(keep, norms, 1.0), 0.0)
