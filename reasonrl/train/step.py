"""The train state and the one jit-compiled train step every objective shares.

    state, metrics = train_step(state, batch)

`batch` is the global batch (dict of [B, ...] arrays). It is split into `grad_accum`
micro-batches inside the step; their loss sums, denominators, gradients and metrics are summed,
and only then divided by the global denominator — so k micro-batches give exactly the update of
one batch k times larger, and packed rows weigh every token equally.

A non-finite loss or gradient never reaches the parameters: the update is skipped in-graph and
the step recorded in `state.first_nonfinite_step` for the host to report (no per-step host sync).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from reasonrl.objectives import metrics as metrics_lib
from reasonrl.objectives.registry import ModelContext, Objective
from reasonrl.parallel.mesh import jit_on_mesh
from reasonrl.parallel.rules import DEFAULT_RULES, Rules, batch_sharding

NONFINITE_MODES = ("stop", "skip")


@flax.struct.dataclass
class TrainState:
    """Everything a run needs to continue bit for bit (besides the data iterator state).

    step: int32 scalar, updates attempted so far.
    params / opt_state: pytrees.
    rng: uint32 key data of the run's base key; step s uses fold_in(rng, s).
    first_nonfinite_step: int32, -1 until a step's loss or gradient is not finite.
    skipped_steps: int32 count of updates skipped for non-finite values.
    extra: the objective's own state (its `StateHook`, e.g. RLP's EMA teacher params), updated
      after every applied update; {} for objectives without one.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array
    first_nonfinite_step: jax.Array
    skipped_steps: jax.Array
    extra: Any = flax.struct.field(default_factory=dict)

    @classmethod
    def create(
        cls, params, tx: optax.GradientTransformation, rng: jax.Array, extra: Any = None
    ) -> TrainState:
        scalar = lambda v: jnp.asarray(v, jnp.int32)  # noqa: E731
        return cls(
            scalar(0),
            params,
            tx.init(params),
            jax.random.key_data(rng),
            scalar(-1),
            scalar(0),
            {} if extra is None else extra,
        )


@dataclasses.dataclass(frozen=True)
class StepConfig:
    grad_accum: int = 1
    on_nonfinite: str = "stop"

    def __post_init__(self):
        if self.grad_accum < 1:
            raise ValueError(f"train.grad_accum={self.grad_accum} must be >= 1")
        if self.on_nonfinite not in NONFINITE_MODES:
            raise ValueError(f"train.on_nonfinite={self.on_nonfinite!r}; choose {NONFINITE_MODES}")


def split_microbatches(batch: dict, grad_accum: int) -> dict:
    """[B, ...] -> [A, B / A, ...]; micro-batch a takes rows a, a + A, ... so that every
    device contributes equally to each micro-batch when rows are sharded contiguously."""

    def split(x):
        if x.shape[0] % grad_accum:
            raise ValueError(
                f"batch of {x.shape[0]} rows does not split into "
                f"grad_accum={grad_accum} micro-batches"
            )
        x = x.reshape(x.shape[0] // grad_accum, grad_accum, *x.shape[1:])
        return jnp.swapaxes(x, 0, 1)

    return jax.tree.map(split, batch)


def accumulate_gradients(
    objective: Objective,
    objective_config,
    model: ModelContext,
    params,
    batch: dict,
    rng: jax.Array,
    grad_accum: int,
):
    """Sums (loss_sum, denominator, metrics, grads) over micro-batches.

    Returns loss_sum, denominator (scalars), merged metrics and the summed gradient of loss_sum.
    """

    def loss_and_grad(mb, key):
        def f(p):
            loss_sum, denominator, metrics = objective(
                p, mb, key, model=model, config=objective_config
            )
            return loss_sum, (denominator, metrics)

        (loss_sum, (denominator, metrics)), grads = jax.value_and_grad(f, has_aux=True)(params)
        grads = jax.tree.map(lambda g: g.astype(jnp.float32), grads)
        return loss_sum, jnp.asarray(denominator, jnp.float32), metrics, grads

    if grad_accum == 1:
        return loss_and_grad(batch, rng)

    micro = split_microbatches(batch, grad_accum)
    keys = jax.random.split(rng, grad_accum)
    first = jax.tree.map(lambda x: x[0], micro)
    abstract = jax.eval_shape(loss_and_grad, first, keys[0])
    zero = lambda s: jnp.zeros(s.shape, s.dtype)  # noqa: E731
    init = (
        zero(abstract[0]),
        zero(abstract[1]),
        metrics_lib.empty_like(jax.tree.map(zero, abstract[2])),
        jax.tree.map(zero, abstract[3]),
    )

    def body(carry, xs):
        mb, key = xs
        out = loss_and_grad(mb, key)
        loss_sum, denominator, metrics, grads = carry
        return (
            loss_sum + out[0],
            denominator + out[1],
            metrics_lib.merge(metrics, out[2]),
            jax.tree.map(jnp.add, grads, out[3]),
        ), None

    carry, _ = jax.lax.scan(body, init, (micro, keys))
    return carry


def make_train_step(
    objective: Objective,
    objective_config,
    model: ModelContext,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    step_config: StepConfig,
    update_extra: Callable[[Any, Any], Any] | None = None,
) -> Callable:
    """The pure step function `(state, batch) -> (state, metrics)` (not yet jitted).

    `update_extra(extra, new_params) -> extra` (the objective's `StateHook.update`) runs after
    the optimizer update; like the params, `extra` keeps its old value when the update is
    skipped.
    """

    def train_step(state: TrainState, batch: dict):
        key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
        loss_sum, denominator, metrics, grads = accumulate_gradients(
            objective, objective_config, model, state.params, batch, key, step_config.grad_accum
        )
        safe_denominator = jnp.maximum(denominator, 1e-9)
        grads = jax.tree.map(lambda g: g / safe_denominator, grads)
        loss = loss_sum / safe_denominator
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        if step_config.on_nonfinite == "stop":  # once stopped, the params stay as they were
            apply = finite & (state.first_nonfinite_step < 0)
        else:
            apply = finite

        updates, new_opt_state = tx.update(grads, state.opt_state, state.params)
        new_params = optax.apply_updates(state.params, updates)
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(apply, n, o), new, old)  # noqa: E731
        first_bad = jnp.where(
            (state.first_nonfinite_step < 0) & ~finite, state.step, state.first_nonfinite_step
        )
        extra = state.extra
        if update_extra is not None:
            extra = keep(update_extra(state.extra, new_params), state.extra)
        new_state = state.replace(
            step=state.step + 1,
            params=keep(new_params, state.params),
            opt_state=keep(new_opt_state, state.opt_state),
            extra=extra,
            first_nonfinite_step=first_bad,
            skipped_steps=state.skipped_steps + (~apply).astype(jnp.int32),
        )
        out = dict(metrics_lib.compute(metrics))
        out.update(
            loss=loss,
            grad_norm=grad_norm,
            learning_rate=schedule(state.step),
            denominator=denominator,
            update_applied=apply.astype(jnp.float32),
        )
        return new_state, out

    return train_step


def state_shardings(
    abstract_state: TrainState, param_shardings, mesh: Mesh, extra_shardings: Any = None
) -> TrainState:
    """Shardings for a TrainState: every optimizer leaf whose path ends with a parameter's path
    (Adam's mu and nu) takes that parameter's sharding; counts and scalars replicate; `extra`
    takes `extra_shardings` (the objective's StateHook's; default: replicated). All name
    `mesh` (whatever its axis types), so a state placed with them lives on the caller's mesh."""
    replicated = NamedSharding(mesh, PartitionSpec())
    by_path = {
        _dict_keys(path): (sharding, leaf.shape)
        for (path, sharding), leaf in zip(
            jax.tree_util.tree_flatten_with_path(param_shardings)[0],
            jax.tree.leaves(abstract_state.params),
        )
    }

    def opt_leaf(path, leaf):
        keys = _dict_keys(path)
        for start in range(len(keys)):
            match = by_path.get(keys[start:])
            if match is not None and match[1] == leaf.shape:
                return match[0]
        return replicated

    opt = jax.tree_util.tree_map_with_path(opt_leaf, abstract_state.opt_state)
    return TrainState(
        step=replicated,
        params=param_shardings,
        opt_state=opt,
        rng=replicated,
        first_nonfinite_step=replicated,
        skipped_steps=replicated,
        extra=(
            jax.tree.map(lambda _: replicated, abstract_state.extra)
            if extra_shardings is None
            else extra_shardings
        ),
    )


def _dict_keys(path) -> tuple:
    return tuple(k.key for k in path if isinstance(k, jax.tree_util.DictKey))


def jit_train_step(
    step_fn: Callable, shardings: TrainState, mesh: Mesh, batch_keys, rules: Rules = DEFAULT_RULES
):
    """jit with explicit in/out shardings; the incoming state is donated.

    `mesh` may have any axis types (e.g. `jax.make_mesh`'s Explicit axes, or set with
    `jax.set_mesh`): the step runs on its Auto view and the new state and metrics come back on
    `mesh` (`parallel.jit_on_mesh`).
    """
    rows = batch_sharding(mesh, rules)
    batch_shardings = {k: rows for k in batch_keys}
    replicated = NamedSharding(mesh, PartitionSpec())
    return jit_on_mesh(
        step_fn,
        mesh,
        in_shardings=(shardings, batch_shardings),
        out_shardings=(shardings, replicated),
        donate_argnums=(0,),
    )
