"""Blockwise attention equals the dense reference: values and gradients, on causal, packed,
padded, GQA and cached inputs, with tile sizes that leave ragged last tiles."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reasonrl.models.attention import blockwise_attention, dense_attention

TOL = 1e-5
SCALE = 0.35


def _inputs(batch, kv_heads, groups, length, dim=8, seed=0):
    rng = np.random.RandomState(seed)
    q = rng.randn(batch, kv_heads, groups, length, dim)
    k, v = rng.randn(2, batch, kv_heads, length, dim)
    return tuple(jnp.asarray(x, jnp.float32) for x in (q, k, v))


def _layout(kind, batch, length):
    """(positions, segment_ids) int32 [B, T] for one kind of batch."""
    positions = np.tile(np.arange(length), (batch, 1))
    segments = np.ones((batch, length))
    if kind == "packed":  # three documents and trailing padding in every row
        cuts = [length // 3, length // 3 + length // 4, length - 3]
        for row in range(batch):
            start = 0
            for i, end in enumerate(cuts + [length]):
                segments[row, start:end] = i + 1 if end != length else 0
                positions[row, start:end] = np.arange(end - start)
                start = end
            cuts = [c + 1 for c in cuts[:-1]] + cuts[-1:]  # different boundaries per row
    elif kind == "padded":  # row 0 left-padded (a prompt), row 1 right-padded
        segments[0, :5] = 0
        positions[0] = np.maximum(np.arange(length) - 5, 0)
        segments[1, -7:] = 0
    return jnp.asarray(positions, jnp.int32), jnp.asarray(segments, jnp.int32)


def _visible(segments):
    """[B, 1, 1, T, 1] mask of the rows that attend to something (not padding queries)."""
    return (segments != 0)[:, None, None, :, None]


@pytest.mark.parametrize(
    "kind, kv_heads, groups, q_block, kv_block",
    [
        ("causal", 2, 3, 8, 8),  # GQA, tiles dividing T
        ("causal", 3, 1, 16, 5),  # MHA, ragged key tiles
        ("packed", 2, 2, 7, 16),  # packed documents crossing tile borders
        ("padded", 1, 4, 6, 9),  # MQA, left and right padding
    ],
)
def test_blockwise_equals_dense_values_and_gradients(kind, kv_heads, groups, q_block, kv_block):
    batch, length = 2, 45
    q, k, v = _inputs(batch, kv_heads, groups, length)
    positions, segments = _layout(kind, batch, length)
    visible = _visible(segments)
    cotangent = jax.random.normal(jax.random.key(1), q.shape) * visible

    def dense(q, k, v):
        return dense_attention(q, k, v, positions, segments, positions, segments, scale=SCALE)

    def blockwise(q, k, v):
        return blockwise_attention(
            q,
            k,
            v,
            positions,
            segments,
            positions,
            segments,
            scale=SCALE,
            q_block=q_block,
            kv_block=kv_block,
        )

    ref, out = dense(q, k, v), jax.jit(blockwise)(q, k, v)
    assert out.shape == q.shape and out.dtype == q.dtype
    np.testing.assert_allclose(out * visible, ref * visible, atol=TOL, rtol=0)
    np.testing.assert_array_equal(out * ~visible, 0.0)  # padding queries see nothing

    def loss(fn):
        return jax.jit(jax.grad(lambda *x: jnp.sum(fn(*x) * cotangent), argnums=(0, 1, 2)))

    for name, got, want in zip("qkv", loss(blockwise)(q, k, v), loss(dense)(q, k, v)):
        assert np.abs(want).max() > 0.1, f"d{name} too small to compare"
        np.testing.assert_allclose(got, want, atol=TOL, rtol=0, err_msg=f"d{name}")


def test_blockwise_with_a_cache_equals_dense_with_a_cache():
    """Prefill/extension: a block of T tokens attending to a half-filled cache and itself."""
    batch, kv_heads, groups, length, slots = 2, 2, 2, 12, 20
    q, k, v = _inputs(batch, kv_heads, groups, length, seed=3)
    _, cache_k, cache_v = _inputs(batch, kv_heads, 1, slots, seed=4)
    filled = np.array([9, 14])
    cache_positions = jnp.asarray(np.tile(np.arange(slots), (batch, 1)), jnp.int32)
    cache_segments = jnp.asarray(np.arange(slots)[None] < filled[:, None], jnp.int32)
    positions = jnp.asarray(filled[:, None] + np.arange(length)[None], jnp.int32)
    segments = jnp.ones((batch, length), jnp.int32)
    cache = (cache_k, cache_v, cache_positions, cache_segments)
    ref = dense_attention(
        q, k, v, positions, segments, positions, segments, scale=SCALE, cache=cache
    )
    out = blockwise_attention(
        q,
        jnp.concatenate([cache_k, k], axis=2),
        jnp.concatenate([cache_v, v], axis=2),
        positions,
        segments,
        jnp.concatenate([cache_positions, positions], axis=1),
        jnp.concatenate([cache_segments, segments], axis=1),
        scale=SCALE,
        q_block=5,
        kv_block=8,
    )
    np.testing.assert_allclose(out, ref, atol=TOL, rtol=0)


def test_bfloat16_blockwise_stays_close_to_float32_dense():
    batch, length = 1, 64
    q, k, v = _inputs(batch, 2, 2, length, dim=16, seed=5)
    positions, segments = _layout("packed", batch, length)
    ref = dense_attention(q, k, v, positions, segments, positions, segments, scale=0.25)
    out = blockwise_attention(
        *(x.astype(jnp.bfloat16) for x in (q, k, v)),
        positions,
        segments,
        positions,
        segments,
        scale=0.25,
        q_block=16,
        kv_block=16,
    )
    assert out.dtype == jnp.bfloat16
    visible = _visible(segments)
    np.testing.assert_allclose(out.astype(jnp.float32) * visible, ref * visible, atol=3e-2)


def test_blockwise_gradient_memory_is_linear_in_length():
    """XLA's own accounting of the compiled gradient of two stacked attention layers in a
    `lax.scan` (as the decoder stacks them): the dense path needs several [T, T] float32
    buffers, the blockwise one less than a single one (tiles of 64 x 64)."""
    length = 1024
    q, k, v = _inputs(1, 1, 1, length)
    positions, segments = _layout("causal", 1, length)
    args = (positions, segments, positions, segments)

    def temp_bytes(attend):
        def loss(q, k, v):
            def layer(x, _):
                return jnp.sin(attend(x, k, v, *args, scale=1.0)), None

            return jax.lax.scan(layer, q, None, length=2)[0].sum()

        grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
        return grad.lower(q, k, v).compile().memory_analysis().temp_size_in_bytes

    square = length * length * 4
    assert temp_bytes(dense_attention) >= square
    tiled = functools.partial(blockwise_attention, q_block=64, kv_block=64)
    assert temp_bytes(tiled) < square / 2
