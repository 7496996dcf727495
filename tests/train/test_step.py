"""The train step: exact gradient accumulation, and non-finite losses never reach the params."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from reasonrl import models, parallel
from reasonrl.models.layers import ActivationSharding
from reasonrl.objectives import Mean, ModelContext, get_objective
from reasonrl.train import (
    StepConfig,
    TrainState,
    accumulate_gradients,
    jit_train_step,
    make_train_step,
    state_shardings,
)
from tests.train.stages import TINY_MODEL

CONFIG = models.get_preset("tiny-qwen3", vocab_size=64, **TINY_MODEL)
OBJECTIVE_CONFIG = ml_collections.FrozenConfigDict(
    dict(z_loss_coef=1e-3, logits_chunk_size=16, report_entropy=False)
)


def _batch(rows=8, length=24, seed=0):
    rng = np.random.RandomState(seed)
    # Very uneven masks: micro-batches hold different token counts, so a mean of per-micro-batch
    # means would differ from the token mean.
    mask = (rng.rand(rows, length) < np.linspace(0.05, 1.0, rows)[:, None]).astype(np.float32)
    return dict(
        tokens=rng.randint(0, 64, (rows, length)).astype(np.int32),
        targets=rng.randint(0, 64, (rows, length)).astype(np.int32),
        loss_mask=mask,
        positions=np.broadcast_to(np.arange(length), (rows, length)).astype(np.int32),
        segment_ids=np.ones((rows, length), np.int32),
    )


def test_accumulated_gradient_equals_big_batch_gradient():
    params = models.init_params(CONFIG, jax.random.key(0))
    objective = get_objective("next_token").fn
    model = ModelContext(CONFIG)
    batch = jax.tree.map(jnp.asarray, _batch())
    big = accumulate_gradients(
        objective, OBJECTIVE_CONFIG, model, params, batch, jax.random.key(1), 1
    )
    for k in (2, 4, 8):
        acc = accumulate_gradients(
            objective, OBJECTIVE_CONFIG, model, params, batch, jax.random.key(1), k
        )
        np.testing.assert_allclose(acc[0], big[0], rtol=1e-6)
        assert float(acc[1]) == float(big[1])
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a / acc[1], b / big[1], atol=1e-6, rtol=1e-5),
            acc[3],
            big[3],
        )
        np.testing.assert_allclose(acc[2]["nll"].compute(), big[2]["nll"].compute(), rtol=1e-6)

    # The naive alternative (average of per-micro-batch means) is measurably different here.
    micro_means = []
    for part in np.split(np.arange(8), 4):
        sub = jax.tree.map(lambda x: x[part], batch)
        loss_sum, denom, _ = objective(
            params, sub, jax.random.key(1), model=model, config=OBJECTIVE_CONFIG
        )
        micro_means.append(float(loss_sum / denom))
    assert abs(np.mean(micro_means) - float(big[0] / big[1])) > 1e-3


@pytest.mark.parametrize("mesh_shape", [(1, 1, 1), (2, 2, 2)])
def test_train_step_with_accumulation_equals_without(mesh_shape):
    devices = jax.devices()[: int(np.prod(mesh_shape))]
    mesh = parallel.make_mesh(mesh_shape, devices=devices)
    # Momentum SGD keeps the update linear in the gradient, so 1e-6 is meaningful (Adam's
    # g / sqrt(v) amplifies float rounding of near-zero gradients).
    tx = optax.sgd(0.5, momentum=0.9)
    model = ModelContext(CONFIG, ActivationSharding(mesh))
    objective = get_objective("next_token").fn
    batch = _batch()
    results = []
    for grad_accum in (1, 4):
        params = models.init_params(CONFIG, jax.random.key(0), mesh=mesh)
        state = TrainState.create(params, tx, jax.random.key(3))
        abstract = jax.eval_shape(lambda: state)
        shardings = state_shardings(abstract, models.param_shardings(CONFIG, mesh), mesh)
        state = jax.device_put(state, shardings)
        step = jit_train_step(
            make_train_step(
                objective,
                OBJECTIVE_CONFIG,
                model,
                tx,
                optax.constant_schedule(0.5),
                StepConfig(grad_accum=grad_accum),
            ),
            shardings,
            mesh,
            tuple(sorted(batch)),
        )
        for _ in range(2):
            state, metrics = step(state, batch)
        results.append((state, metrics))
        # Optimizer moments are sharded like their params.
        trace = state.opt_state[0].trace["layers"]["mlp"]["up_kernel"]
        assert trace.sharding.spec == state.params["layers"]["mlp"]["up_kernel"].sharding.spec
    (s1, m1), (s4, m4) = results
    np.testing.assert_allclose(m1["loss"], m4["loss"], rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), s1.params, s4.params)


def _poisoned_objective(params, batch, rng, *, model, config):
    """Cross-entropy whose loss becomes NaN when batch["poison"] is set."""
    loss_sum, denominator, metrics = get_objective("next_token").fn(
        params, batch, rng, model=model, config=config
    )
    loss_sum = jnp.where(batch["poison"][0] > 0, jnp.nan, loss_sum)
    return loss_sum, denominator, {**metrics, "poison": Mean.of(batch["poison"][0], 1.0)}


@pytest.mark.parametrize("mode", ["stop", "skip"])
def test_nonfinite_loss_never_reaches_params(mode):
    from reasonrl.train.engine import NonFiniteLossError, check_finite

    tx = optax.sgd(0.1)
    params = models.init_params(CONFIG, jax.random.key(0))
    state = TrainState.create(params, tx, jax.random.key(0))
    step = jax.jit(
        make_train_step(
            _poisoned_objective,
            OBJECTIVE_CONFIG,
            ModelContext(CONFIG),
            tx,
            optax.constant_schedule(0.1),
            StepConfig(1, mode),
        )
    )
    clean, poison = _batch(), _batch()
    clean["poison"] = np.zeros((8,), np.float32)
    poison["poison"] = np.ones((8,), np.float32)
    state, _ = step(state, clean)
    before = state.params
    state, metrics = step(state, poison)
    assert float(metrics["update_applied"]) == 0.0
    jax.tree.map(np.testing.assert_array_equal, state.params, before)
    assert int(state.first_nonfinite_step) == 1
    state, _ = step(state, clean)
    changed = any(
        not np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(before))
    )
    if mode == "stop":
        assert not changed, "after a non-finite step the stop mode must freeze the params"
        with pytest.raises(NonFiniteLossError, match="non-finite at step 1"):
            check_finite(state, mode)
    else:
        assert changed and int(state.skipped_steps) == 1
        assert check_finite(state, mode) == 1  # warns, does not raise


def test_objective_state_follows_applied_updates_only():
    """`update_extra` (an objective's StateHook, e.g. RLP's EMA teacher) sees the updated
    params after an applied update; a skipped non-finite update leaves it as it was."""
    from reasonrl.objectives.rlp import init_ema_teacher, update_ema_teacher

    tx = optax.sgd(0.1)
    config = ml_collections.ConfigDict({"ema_decay": 0.5})
    params = models.init_params(CONFIG, jax.random.key(0))
    state = TrainState.create(params, tx, jax.random.key(0), init_ema_teacher(params, config))
    step = jax.jit(
        make_train_step(
            _poisoned_objective,
            OBJECTIVE_CONFIG,
            ModelContext(CONFIG),
            tx,
            optax.constant_schedule(0.1),
            StepConfig(1, "skip"),
            update_extra=lambda extra, p: update_ema_teacher(extra, p, config),
        )
    )
    clean, poison = _batch(), _batch()
    clean["poison"] = np.zeros((8,), np.float32)
    poison["poison"] = np.ones((8,), np.float32)
    before = state.params
    state, _ = step(state, clean)
    jax.tree.map(  # φ = (θ_0 + θ_1) / 2
        lambda e, a, b: np.testing.assert_allclose(e, (np.asarray(a) + b) / 2, atol=1e-6),
        state.extra["ema_params"],
        before,
        state.params,
    )
    ema = state.extra["ema_params"]
    state, metrics = step(state, poison)
    assert float(metrics["update_applied"]) == 0.0
    jax.tree.map(np.testing.assert_array_equal, state.extra["ema_params"], ema)
