"""Blockwise attention: an online softmax over key/value blocks and a recomputing custom VJP.

The algorithm of Rabe & Staats (2021) and FlashAttention-2 (Dao, 2023) in plain JAX. Queries
are split into blocks of `q_block` rows and keys/values into blocks of `kv_block`; a
`lax.scan` over query blocks runs an inner `lax.fori_loop` over key/value blocks that keeps a
running row maximum, normaliser and unnormalised output, so no more than one
[B, K, G, q_block, kv_block] score tile exists at a time. The forward pass saves only the
output and the row log-sum-exp [B, K, G, T]; the backward pass recomputes each tile from them
(dV = Pᵀ dO, dS = P ∘ (dO Vᵀ − rowsum(dO ∘ O)), dQ = dS K, dK = dSᵀ Q). Memory is linear in
T and S instead of T * S.

Tiles that cannot hold a visible key for any row (above the causal diagonal, between
different packed documents) are never visited: each loop runs over a range of tiles bounded
from per-tile position and segment-id bounds, which halves the work of causal attention.

Shapes: B batch, K key/value heads, G query heads per key/value head, T query length, S key
length, Dh head dim. The mask is the same as the dense path's (`dense.attention_mask`): causal
by position, within one segment, never to segment 0.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from reasonrl.models.attention.dense import attention_mask

Array = jax.Array
_F32 = jnp.float32


def blockwise_attention(
    q: Array,
    k: Array,
    v: Array,
    q_positions: Array,
    q_segment_ids: Array,
    k_positions: Array,
    k_segment_ids: Array,
    *,
    scale: float,
    q_block: int,
    kv_block: int,
) -> Array:
    """Memory-efficient softmax(q kᵀ * scale + mask) v.

    Args:
      q: [B, K, G, T, Dh]; k, v: [B, K, S, Dh].
      q_positions, q_segment_ids: int [B, T]; k_positions, k_segment_ids: int [B, S].
      scale: multiplies the scores (1 / sqrt(Dh)).
      q_block, kv_block: tile sizes (capped at T and S). T and S need not be multiples: the
        inputs are padded with segment id 0, which is never attended to.

    Returns:
      [B, K, G, T, Dh] in q's dtype; scores, softmax statistics and accumulators are float32.
      A row with no visible key (a padding query) is 0.
    """
    length, keys = q.shape[3], k.shape[2]
    bq, bk = min(q_block, length), min(kv_block, keys)
    pad_q, pad_k = -length % bq, -keys % bk
    if pad_q:
        q = jnp.pad(q, [(0, 0)] * 3 + [(0, pad_q), (0, 0)])
        q_positions = jnp.pad(q_positions, [(0, 0), (0, pad_q)])
        q_segment_ids = jnp.pad(q_segment_ids, [(0, 0), (0, pad_q)])
    if pad_k:
        k = jnp.pad(k, [(0, 0), (0, 0), (0, pad_k), (0, 0)])
        v = jnp.pad(v, [(0, 0), (0, 0), (0, pad_k), (0, 0)])
        k_positions = jnp.pad(k_positions, [(0, 0), (0, pad_k)])
        k_segment_ids = jnp.pad(k_segment_ids, [(0, 0), (0, pad_k)])
    out = _attention(
        q, k, v, q_positions, q_segment_ids, k_positions, k_segment_ids, float(scale), bq, bk
    )
    return out[:, :, :, :length]


def _split(x: Array, block: int, axis: int) -> Array:
    """Splits `axis` into blocks of `block` and moves the block index to the front."""
    shape = x.shape
    x = x.reshape(shape[:axis] + (shape[axis] // block, block) + shape[axis + 1 :])
    return jnp.moveaxis(x, axis, 0)


def _merge(x: Array, axis: int) -> Array:
    """Inverse of `_split`: [n, ..., block, ...] -> [..., n * block, ...]."""
    x = jnp.moveaxis(x, 0, axis)
    return x.reshape(x.shape[:axis] + (-1,) + x.shape[axis + 2 :])


def _scores(qi: Array, kj: Array, scale: float) -> Array:
    """[B, K, G, bq, Dh] x [B, K, bk, Dh] -> float32 [B, K, G, bq, bk]."""
    return jnp.einsum("bkgth,bksh->bkgts", qi, kj, preferred_element_type=_F32) * scale


def _visible_tiles(qp, qs, kp, ks, bq, bk) -> Array:
    """bool [T / bq, S / bk]: query tile i may see a key of key tile j (a superset).

    From per-tile bounds: a visible pair needs k_pos <= q_pos and equal nonzero segment ids, so
    a tile pair whose smallest key position exceeds the largest query position, or whose
    segment-id ranges do not overlap, is empty for every row of the batch.
    """
    big = jnp.iinfo(jnp.int32).max

    def bounds(pos, seg, block):
        valid = (seg != 0).reshape(seg.shape[0], -1, block)
        pos, seg = pos.reshape(valid.shape), seg.reshape(valid.shape)
        return (
            jnp.where(valid, pos, -big).max(-1),
            jnp.where(valid, pos, big).min(-1),
            jnp.where(valid, seg, big).min(-1),
            jnp.where(valid, seg, -big).max(-1),
        )  # each [B, tiles]

    q_pos_max, _, q_seg_min, q_seg_max = bounds(qp, qs, bq)
    _, k_pos_min, k_seg_min, k_seg_max = bounds(kp, ks, bk)
    return (
        (k_pos_min[:, None, :] <= q_pos_max[:, :, None])
        & (k_seg_min[:, None, :] <= q_seg_max[:, :, None])
        & (q_seg_min[:, :, None] <= k_seg_max[:, None, :])
    ).any(0)


def _ranges(visible: Array) -> tuple[Array, Array]:
    """int32 [rows] lo, hi: the visible columns of each row lie in [lo, hi)."""
    columns = jnp.arange(visible.shape[1], dtype=jnp.int32)
    lo = jnp.where(visible, columns, visible.shape[1]).min(-1)
    return lo, jnp.maximum(jnp.where(visible, columns + 1, 0).max(-1), lo)


def _forward(q, k, v, qp, qs, kp, ks, scale, bq, bk):
    """(out [B, K, G, T, Dh], lse float32 [B, K, G, T]); T, S multiples of bq, bk.

    The key loop of each query tile is a `fori_loop` over its range of `_visible_tiles` only:
    tiles that cannot hold a visible key (above the causal diagonal, other documents) are never
    computed. (A `lax.cond` per tile would skip them too, but inside an outer `lax.scan` JAX
    then stacks per-tile residuals of the forward pass although the custom VJP never uses them.)
    """
    batch, heads, groups, _, dim = q.shape
    lo, hi = _ranges(_visible_tiles(qp, qs, kp, ks, bq, bk))

    def one_query_block(_, xs):
        qi, qpi, qsi, first, last = xs

        def kv_step(j, carry):
            m, norm, acc = carry
            kj, vj = (jax.lax.dynamic_slice_in_dim(x, j * bk, bk, axis=2) for x in (k, v))
            kpj, ksj = (jax.lax.dynamic_slice_in_dim(x, j * bk, bk, axis=1) for x in (kp, ks))
            mask = attention_mask(qpi, qsi, kpj, ksj)
            s = jnp.where(mask, _scores(qi, kj, scale), -jnp.inf)
            m_new = jnp.maximum(m, s.max(-1))
            m_ref = jnp.where(jnp.isfinite(m_new), m_new, 0.0)  # rows with nothing visible yet
            p = jnp.exp(s - m_ref[..., None])
            correction = jnp.exp(m - m_ref)
            pv = jnp.einsum("bkgts,bksh->bkgth", p.astype(v.dtype), vj, preferred_element_type=_F32)
            return m_new, norm * correction + p.sum(-1), acc * correction[..., None] + pv

        init = (
            jnp.full((batch, heads, groups, bq), -jnp.inf, _F32),
            jnp.zeros((batch, heads, groups, bq), _F32),
            jnp.zeros((batch, heads, groups, bq, dim), _F32),
        )
        m, norm, acc = jax.lax.fori_loop(first, last, kv_step, init)
        visible = norm > 0
        safe_norm = jnp.where(visible, norm, 1.0)
        lse = jnp.where(visible, m + jnp.log(safe_norm), 0.0)
        return None, ((acc / safe_norm[..., None]).astype(q.dtype), lse)

    q_blocks = (_split(q, bq, 3), _split(qp, bq, 1), _split(qs, bq, 1), lo, hi)
    _, (out, lse) = jax.lax.scan(one_query_block, None, q_blocks)
    return _merge(out, 3), _merge(lse, 3)


@functools.partial(jax.custom_vjp, nondiff_argnums=(7, 8, 9))
def _attention(q, k, v, qp, qs, kp, ks, scale, bq, bk):
    return _forward(q, k, v, qp, qs, kp, ks, scale, bq, bk)[0]


def _attention_fwd(q, k, v, qp, qs, kp, ks, scale, bq, bk):
    out, lse = _forward(q, k, v, qp, qs, kp, ks, scale, bq, bk)
    return out, (q, k, v, qp, qs, kp, ks, out, lse)


def _attention_bwd(scale, bq, bk, residuals, d_out):
    """FlashAttention-2's backward: a scan over key/value tiles (dK, dV of the tile in the
    carry) with an inner `fori_loop` over the query tiles that may see it, adding their dQ
    contributions into a float32 [T / bq, ...] accumulator."""
    q, k, v, qp, qs, kp, ks, out, lse = residuals
    batch, heads, groups, _, dim = q.shape
    delta = jnp.sum(d_out.astype(_F32) * out.astype(_F32), axis=-1)  # [B, K, G, T]
    q_tiles = (_split(q, bq, 3), _split(d_out, bq, 3), _split(lse, bq, 3), _split(delta, bq, 3))
    qp_tiles, qs_tiles = _split(qp, bq, 1), _split(qs, bq, 1)
    lo, hi = _ranges(_visible_tiles(qp, qs, kp, ks, bq, bk).T)

    def one_kv_block(dq, ys):
        kj, vj, kpj, ksj, first, last = ys

        def q_step(i, carry):
            dk, dv, dq = carry
            qi, doi, lsei, deltai = (x[i] for x in q_tiles)
            mask = attention_mask(qp_tiles[i], qs_tiles[i], kpj, ksj)
            p = jnp.where(mask, jnp.exp(_scores(qi, kj, scale) - lsei[..., None]), 0.0)
            dv = dv + jnp.einsum(
                "bkgts,bkgth->bksh", p.astype(v.dtype), doi, preferred_element_type=_F32
            )
            dp = jnp.einsum("bkgth,bksh->bkgts", doi, vj, preferred_element_type=_F32)
            ds = (p * (dp - deltai[..., None]) * scale).astype(q.dtype)
            dqi = jnp.einsum("bkgts,bksh->bkgth", ds, kj, preferred_element_type=_F32)
            dk = dk + jnp.einsum("bkgts,bkgth->bksh", ds, qi, preferred_element_type=_F32)
            return dk, dv, dq.at[i].add(dqi)

        zeros = jnp.zeros((batch, heads, bk, dim), _F32)
        dk, dv, dq = jax.lax.fori_loop(first, last, q_step, (zeros, zeros, dq))
        return dq, (dk.astype(k.dtype), dv.astype(v.dtype))

    kv_tiles = (_split(k, bk, 2), _split(v, bk, 2), _split(kp, bk, 1), _split(ks, bk, 1), lo, hi)
    dq0 = jnp.zeros((q.shape[3] // bq, batch, heads, groups, bq, dim), _F32)
    dq, (dk, dv) = jax.lax.scan(one_kv_block, dq0, kv_tiles)
    return (_merge(dq, 3).astype(q.dtype), _merge(dk, 2), _merge(dv, 2), None, None, None, None)


_attention.defvjp(_attention_fwd, _attention_bwd)
