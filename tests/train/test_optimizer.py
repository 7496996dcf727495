"""Schedules, weight-decay masks and bf16 compute with fp32 master params."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from reasonrl import models
from reasonrl.objectives import ModelContext, get_objective
from reasonrl.train import (
    StepConfig,
    TrainState,
    make_optimizer,
    make_schedule,
    make_train_step,
    stage_config,
    weight_decay_mask,
)
from tests.train.stages import TINY_MODEL


def _optimizer_config(**changes):
    cfg = stage_config().optimizer
    cfg.update(learning_rate=1.0, warmup_steps=10, total_steps=110, end_lr_fraction=0.1)
    cfg.update(**changes)
    return cfg


@pytest.mark.parametrize(
    "schedule, at_60, at_110",
    [("cosine", 0.1 + 0.9 * 0.5, 0.1), ("linear", 0.55, 0.1), ("constant", 1.0, 1.0)],
)
def test_schedules_warm_up_then_decay(schedule, at_60, at_110):
    fn = make_schedule(_optimizer_config(schedule=schedule))
    np.testing.assert_allclose([fn(0), fn(5), fn(10)], [0.0, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(fn(60), at_60, atol=1e-6)
    np.testing.assert_allclose(fn(110), at_110, atol=1e-6)


def test_weight_decay_only_on_matrices():
    config = models.get_preset("tiny-qwen2", **TINY_MODEL)
    mask = weight_decay_mask(models.param_shapes(config))
    assert mask["embedding"] and mask["layers"]["mlp"]["up_kernel"]
    assert mask["layers"]["attn"]["q_kernel"] and mask["layers"]["attn"]["o_kernel"]
    assert not mask["layers"]["attn"]["q_bias"]
    assert not mask["layers"]["input_norm"]["scale"] and not mask["final_norm"]["scale"]


def test_decay_mask_is_applied_by_the_optimizer():
    params = {"kernel": jnp.ones((2, 2)), "norm": {"scale": jnp.ones((2,))}}
    tx, _ = make_optimizer(
        _optimizer_config(weight_decay=0.5, schedule="constant", warmup_steps=0, clip_norm=0.0)
    )
    zero_grads = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero_grads, tx.init(params), params)
    assert float(updates["kernel"][0, 0]) == pytest.approx(-0.5)  # lr * wd * param
    assert float(updates["norm"]["scale"][0]) == 0.0


def test_bf16_compute_keeps_fp32_master_params_and_learns():
    config = models.get_preset("tiny-qwen3", vocab_size=64, dtype="bfloat16", **TINY_MODEL)
    tx = optax.adam(3e-3)
    params = models.init_params(config, jax.random.key(0))
    state = TrainState.create(params, tx, jax.random.key(0))
    objective = get_objective("next_token")
    step = jax.jit(
        make_train_step(
            objective.fn,
            ml_collections.FrozenConfigDict(objective.defaults),
            ModelContext(config),
            tx,
            optax.constant_schedule(3e-3),
            StepConfig(),
        )
    )
    rng = np.random.RandomState(0)
    tokens = np.tile(rng.randint(0, 64, (1, 32)), (4, 1)).astype(np.int32)  # memorisable
    batch = dict(
        tokens=tokens,
        targets=np.roll(tokens, -1, axis=1),
        loss_mask=np.ones((4, 32), np.float32),
        positions=np.tile(np.arange(32), (4, 1)).astype(np.int32),
        segment_ids=np.ones((4, 32), np.int32),
    )
    losses = []
    for _ in range(30):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state.params))
    assert losses[-1] < 0.5 * losses[0], losses
