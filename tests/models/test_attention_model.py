"""Through the whole model: blockwise attention equals dense attention (logits, parameter
gradients, the sampler's prefill into a KV cache), and every remat policy gives the same
gradients while keeping less."""

import jax
import jax.numpy as jnp
import numpy as np

from reasonrl import models, parallel
from reasonrl.models.transformer import KVCache

TOL = 1e-5
SMALL_TILES = dict(attention="blockwise", attention_q_block=8, attention_kv_block=8)


def _packed_batch(vocab, batch=2, length=40):
    """Tokens, positions, segment ids [B, T]: row 0 packs two documents and padding, row 1 is
    one document."""
    rng = np.random.RandomState(0)
    tokens = rng.randint(0, vocab, (batch, length)).astype(np.int32)
    positions = np.tile(np.arange(length), (batch, 1))
    segments = np.ones((batch, length))
    positions[0, 17:] -= 17
    segments[0, 17:] = 2
    segments[0, -6:] = 0
    return tokens, positions.astype(np.int32), segments.astype(np.int32)


def _loss(config, tokens, positions, segments):
    mask = jnp.asarray(segments != 0, jnp.float32)[..., None]

    def loss(params):
        hidden, _ = models.hidden_states(config, params, tokens, positions, segments)
        logits = models.logits_from_hidden(config, params, hidden)
        weights = jnp.cos(jnp.arange(logits.shape[-1])) / logits.shape[-1]
        return jnp.sum(jax.nn.log_softmax(logits) * mask * weights) / jnp.sum(mask)

    return loss


def test_blockwise_model_equals_dense_model():
    """tiny-qwen3: GQA and qk-norm (HF parity covers the other families' logits)."""
    dense = models.get_preset("tiny-qwen3", attention="dense")
    blockwise = dense.replace(**SMALL_TILES)
    params = models.init_params(dense, jax.random.key(0))
    batch = _packed_batch(dense.vocab_size)
    visible = (batch[2] != 0)[..., None]
    logits = [
        np.asarray(models.forward(c, params, batch[0], positions=batch[1], segment_ids=batch[2]))
        for c in (dense, blockwise)
    ]
    assert np.abs(logits[0]).max() > 0.1
    np.testing.assert_allclose(logits[1] * visible, logits[0] * visible, atol=TOL, rtol=0)
    grads = [jax.jit(jax.grad(_loss(c, *batch)))(params) for c in (dense, blockwise)]
    for path, want in jax.tree_util.tree_leaves_with_path(grads[0]):
        got = _at(grads[1], path)
        np.testing.assert_allclose(got, want, atol=TOL, rtol=0, err_msg=jax.tree_util.keystr(path))


def _at(tree, path):
    for key in path:
        tree = tree[key.key]
    return tree


def test_prefill_into_a_cache_equals_dense():
    """The sampler's prefill: a long prompt block attending to an empty cache and itself takes
    the blockwise path (T > q_block) and writes the same cache as the dense path."""
    dense = models.get_preset("tiny-qwen3", attention="dense")
    blockwise = dense.replace(**SMALL_TILES)
    params = models.init_params(dense, jax.random.key(1))
    tokens, _, _ = _packed_batch(dense.vocab_size, length=24)
    lengths = np.array([24, 15])
    positions = np.tile(np.arange(24), (2, 1)).astype(np.int32)
    segments = (positions < lengths[:, None]).astype(np.int32)
    outputs = []
    for config in (dense, blockwise):
        cache = KVCache.empty(config, 2, 32)
        hidden, cache = models.hidden_states(
            config, params, tokens, positions, segments, cache=cache, cache_index=jnp.int32(0)
        )
        outputs.append((hidden, cache.keys, cache.values))
    visible = segments[..., None] != 0
    np.testing.assert_allclose(outputs[1][0] * visible, outputs[0][0] * visible, atol=TOL)
    filled = np.pad(segments, ((0, 0), (0, 8)))[None, :, None, :, None] != 0  # [1, B, 1, S, 1]
    for got, want in zip(outputs[1][1:], outputs[0][1:]):  # keys, values of the prompt slots
        np.testing.assert_allclose(got * filled, want * filled, atol=TOL)


def test_remat_policies_give_equal_gradients_and_keep_less():
    base = models.get_preset("tiny-qwen3", **SMALL_TILES)
    params = models.init_params(base, jax.random.key(2))
    batch = _packed_batch(base.vocab_size)
    grads, temp = {}, {}
    for policy in ("none", "save_matmul_outputs", "full"):
        grad = jax.jit(jax.grad(_loss(base.replace(remat=policy), *batch)))
        compiled = grad.lower(params).compile()
        grads[policy] = compiled(params)
        temp[policy] = compiled.memory_analysis().temp_size_in_bytes
    for policy in ("save_matmul_outputs", "full"):
        for got, want in zip(jax.tree.leaves(grads[policy]), jax.tree.leaves(grads["none"])):
            np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert temp["full"] < temp["save_matmul_outputs"] < temp["none"], temp


def test_blockwise_on_a_sharded_mesh_equals_dense():
    """Rows over data x fsdp, heads over tensor: the tile-skipping predicate is then a
    cross-device reduction; the logits must not change."""
    mesh = parallel.make_mesh(dict(data=2, fsdp=2, tensor=2))
    dense = models.get_preset("tiny-qwen3", attention="dense")
    params = models.init_params(dense, jax.random.key(3), mesh=mesh)
    tokens, positions, segments = _packed_batch(dense.vocab_size, batch=4)
    segments[2, :5] = 0  # a left-padded row
    logits = [
        np.asarray(models.forward(c, params, tokens, positions=positions, segment_ids=segments))
        for c in (dense, dense.replace(**SMALL_TILES))
    ]
    visible = (segments != 0)[..., None]
    np.testing.assert_allclose(logits[1] * visible, logits[0] * visible, atol=TOL, rtol=0)
