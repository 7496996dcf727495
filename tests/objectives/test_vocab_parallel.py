"""Vocabulary-parallel log-probs (shard_map over the vocab axis) against the unsharded path."""

import re

import jax
import ml_collections
import numpy as np
import pytest

from reasonrl import models
from reasonrl.models.layers import ActivationSharding
from reasonrl.objectives import ModelContext, get_objective, token_statistics
from reasonrl.objectives import logprobs as logprobs_module
from reasonrl.parallel import MeshConfig, batch_sharding, make_mesh
from reasonrl.parallel.vocab_parallel import vocab_parallel_plan

ROWS, LENGTH, CHUNK = 4, 12, 4
MESHES = [(2, 2, 2), (1, 2, 4), (2, 1, 4)]  # (data, fsdp, tensor)


def _config(tied: bool, vocab_size: int = 512):
    return models.get_preset("tiny-qwen3", tie_word_embeddings=tied, vocab_size=vocab_size)


def _batch(config):
    rng = np.random.RandomState(0)
    tokens = rng.randint(0, config.vocab_size, (ROWS, LENGTH)).astype(np.int32)
    targets = rng.randint(0, config.vocab_size, (ROWS, LENGTH)).astype(np.int32)
    # Every other target is the model's argmax, so argmax_match is not all zeros.
    argmax = np.asarray(models.forward(config, _params(config), tokens)).argmax(-1)
    targets[:, ::2] = argmax[:, ::2]
    return dict(
        tokens=tokens,
        targets=targets,
        loss_mask=(rng.rand(ROWS, LENGTH) > 0.3).astype(np.float32),
        positions=np.broadcast_to(np.arange(LENGTH), (ROWS, LENGTH)).astype(np.int32),
        segment_ids=np.ones((ROWS, LENGTH), np.int32),
    )


def _params(config, mesh=None):
    params = models.init_params(config, jax.random.key(0), mesh=mesh)
    return jax.tree.map(lambda p: p * 8 if p.ndim > 1 else p, params)  # sharper logits


def _stats_fn(config, sharding):
    def fn(params, hidden, targets):
        return token_statistics(
            config,
            params,
            hidden,
            targets,
            chunk_size=CHUNK,
            entropy=True,
            temperature=0.7,
            sharding=sharding,
        )

    return jax.jit(fn)


def _grad_fn(config, sharding):
    objective = get_objective("sft").fn
    options = ml_collections.ConfigDict(dict(logits_chunk_size=CHUNK, report_entropy=True))

    def loss(params, batch):
        return objective(
            params, batch, jax.random.key(0), model=ModelContext(config, sharding), config=options
        )[0]

    return jax.jit(jax.value_and_grad(loss))


def _place(config, mesh):
    params = _params(config, mesh)
    rows = batch_sharding(mesh)
    return params, {k: jax.device_put(v, rows) for k, v in _batch(config).items()}


@pytest.mark.parametrize("mesh_shape", MESHES)
@pytest.mark.parametrize("tied", [True, False])
def test_sharded_vocab_matches_unsharded(mesh_shape, tied):
    config = _config(tied)
    mesh = make_mesh(MeshConfig(*mesh_shape))
    sharding = ActivationSharding(mesh)
    params, batch = _place(config, mesh)
    hidden_shape = (ROWS, LENGTH, config.hidden_size)
    plan = vocab_parallel_plan(config, params, hidden_shape, sharding)
    assert plan is not None and plan.vocab_axes == ("tensor",)

    # The statistics from the same hidden states (the sharded network body adds its own float32
    # noise, which is not what is tested here).
    ref_params, ref_batch = _params(config), _batch(config)
    ref_hidden = ModelContext(config).hidden(ref_params, ref_batch)
    hidden = jax.device_put(ref_hidden, batch_sharding(mesh))
    expected = _stats_fn(config, None)(ref_params, ref_hidden, ref_batch["targets"])
    got = _stats_fn(config, sharding)(params, hidden, batch["targets"])
    for name in ("logprobs", "logsumexp", "entropy"):
        np.testing.assert_allclose(
            getattr(got, name), getattr(expected, name), atol=1e-5, err_msg=name
        )
    np.testing.assert_array_equal(got.argmax_match, expected.argmax_match)
    assert 0 < float(np.asarray(expected.argmax_match).sum())  # sharpened: some argmax hits

    # The gradient through the vocab-parallel statistics, isolated from the rest of the network:
    # w.r.t. the hidden states and the LM head (embedding when tied).
    ref_head = _head_grad_fn(config, None)(ref_params, ref_hidden, ref_batch)
    head = _head_grad_fn(config, sharding)(params, hidden, batch)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5),
        head,
        ref_head,
    )

    # The whole sft loss and gradient: equal to the plain path on the same mesh within 1e-5, and
    # to the unsharded one up to the float32 noise the sharded network body adds (which the plain
    # path shows too: the body's sharded matmuls sum in another order, magnified by the x8 params).
    loss, grad = _grad_fn(config, sharding)(params, batch)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logprobs_module, "vocab_parallel_plan", lambda *a, **k: None)
        plain_loss, plain_grad = _grad_fn(config, sharding)(params, batch)
    ref_loss, ref_grad = _grad_fn(config, None)(ref_params, ref_batch)
    np.testing.assert_allclose(float(loss), float(plain_loss), rtol=1e-6)
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-5)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5),
        grad,
        plain_grad,
    )
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(
            np.asarray(a), np.asarray(b), atol=1e-3 * float(np.abs(np.asarray(b)).max())
        ),
        grad,
        ref_grad,
    )


def _head_grad_fn(config, sharding):
    def loss(params, hidden, batch):
        stats = token_statistics(
            config,
            params,
            hidden,
            batch["targets"],
            chunk_size=CHUNK,
            entropy=True,
            temperature=0.7,
            sharding=sharding,
        )
        mask = batch["loss_mask"]
        return (
            -(stats.logprobs * mask).sum()
            + 1e-2 * (stats.logsumexp**2 * mask).sum()
            + 0.1 * (stats.entropy * mask).sum()
        )

    key = "embedding" if config.tie_word_embeddings else "lm_head"
    grad = jax.grad(loss, argnums=(0, 1))
    return jax.jit(lambda p, h, b: (grad(p, h, b)[0][key], grad(p, h, b)[1]))


def _logits_all_gathers(hlo: str, vocab_size: int) -> list[str]:
    """All-gather instructions in compiled HLO whose result is [.., .., V] (rank >= 3)."""
    found = []
    for line in hlo.splitlines():
        if "all-gather" not in line or "=" not in line:
            continue
        result = line.split("=", 1)[1]
        for dims in re.findall(r"[a-z0-9]+\[([0-9,]+)\]", result.split("all-gather", 1)[0]):
            sizes = [int(d) for d in dims.split(",")]
            if len(sizes) >= 3 and sizes[-1] == vocab_size:
                found.append(line.strip())
    return found


def _compiled_grad_hlo(config, mesh):
    params, batch = _place(config, mesh)
    return _grad_fn(config, ActivationSharding(mesh)).lower(params, batch).compile().as_text()


@pytest.mark.parametrize("tied", [True, False])
def test_no_all_gather_of_logits_in_compiled_hlo(tied):
    config = _config(tied)
    mesh = make_mesh(MeshConfig(1, 2, 4))
    hlo = _compiled_grad_hlo(config, mesh)
    assert "all-reduce" in hlo  # the explicit psums are there
    assert _logits_all_gathers(hlo, config.vocab_size) == []


def test_hlo_detector_finds_a_logits_all_gather():
    """The detector is not vacuous. (On XLA:CPU at this size the plain path is not caught: the
    SPMD partitioner happens to reduce the sharded logits without gathering them either, so
    the detector is checked on HLO text with a logits all-gather instead.)"""
    line = (
        "  %all-gather.7 = f32[2,4,512]{2,1,0} all-gather(f32[2,4,128]{2,1,0} %dot.3), "
        "channel_id=9, replica_groups=[2,4]<=[8], dimensions={2}, use_global_device_ids=true"
    )
    assert _logits_all_gathers(line, 512) == [line.strip()]
    weight = "  %all-gather.8 = f32[64,512]{1,0} all-gather(f32[64,128]{1,0} %p), dimensions={1}"
    assert _logits_all_gathers(weight, 512) == []


def test_vocab_not_divisible_by_tensor_falls_back_to_plain_path():
    """V = 510 over tensor = 4: the rules leave the vocabulary replicated, so no shard_map."""
    config = _config(tied=True, vocab_size=510)
    mesh = make_mesh(MeshConfig(1, 2, 4))
    assert models.param_shardings(config, mesh)["embedding"].spec[0] is None
    sharding = ActivationSharding(mesh)
    params, batch = _place(config, mesh)
    hidden_shape = (ROWS, LENGTH, config.hidden_size)
    assert vocab_parallel_plan(config, params, hidden_shape, sharding) is None
    ref_params, ref_batch = _params(config), _batch(config)
    ref_hidden = ModelContext(config).hidden(ref_params, ref_batch)
    hidden = jax.device_put(ref_hidden, batch_sharding(mesh))
    expected = _stats_fn(config, None)(ref_params, ref_hidden, ref_batch["targets"])
    got = _stats_fn(config, sharding)(params, hidden, batch["targets"])
    np.testing.assert_allclose(got.logprobs, expected.logprobs, atol=1e-5)
    np.testing.assert_allclose(got.entropy, expected.entropy, atol=1e-5)
