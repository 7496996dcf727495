"""Group-relative advantage estimators, by name.

Every estimator maps outcome rewards R, float32 [num_groups * G] with the G samples of one
prompt stored contiguously (rows g*G .. g*G + G - 1), to advantages of the same shape:

    grpo    A_i = (R_i - mean(R)) / (std(R) + eps)   DeepSeekMath eqs. 3-4; std is
            Bessel-corrected (torch.std, as in verl's compute_grpo_outcome_advantage).
    drgrpo  A_i = R_i - mean(R)                       Dr. GRPO (arXiv 2503.20783): no std.
    rloo    A_i = R_i - mean_{j != i} R_j = G / (G - 1) * (R_i - mean(R))
            leave-one-out baseline (also RLP's eq. 7 advantage).

Means and stds are over the sample's own group. Edge cases, identical for all estimators:
  - G == 1: the advantage is 0 (a lone sample has no group baseline, so it gives no signal).
    verl instead uses mean 0 / std 1 there, i.e. A = R; we deliberately do not.
  - all rewards in a group equal: the advantage is exactly 0, not an ulp of rounding in the
    mean amplified by grpo's 1/(0 + eps), and never NaN.

All estimators are pure jnp and jit-able with `group_size` static. Advantages are constants for
the policy loss: the objective applies stop_gradient, so no gradient flows into the rewards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import jax
import jax.numpy as jnp


class AdvantageEstimator(Protocol):
    def __call__(self, rewards: jax.Array, group_size: int, *, eps: float = 1e-6) -> jax.Array: ...


ADVANTAGE_ESTIMATORS: dict[str, AdvantageEstimator] = {}


def register_advantage_estimator(name: str) -> Callable[[AdvantageEstimator], AdvantageEstimator]:
    def decorator(fn: AdvantageEstimator) -> AdvantageEstimator:
        if name in ADVANTAGE_ESTIMATORS:
            raise ValueError(f"advantage estimator {name!r} is already registered")
        ADVANTAGE_ESTIMATORS[name] = fn
        return fn

    return decorator


def get_advantage_estimator(name: str) -> AdvantageEstimator:
    if name not in ADVANTAGE_ESTIMATORS:
        raise KeyError(
            f"unknown advantage estimator {name!r}; registered: {sorted(ADVANTAGE_ESTIMATORS)}"
        )
    return ADVANTAGE_ESTIMATORS[name]


def _grouped(rewards: jax.Array, group_size: int) -> jax.Array:
    """[num_groups * G] -> float32 [num_groups, G]."""
    rewards = jnp.asarray(rewards, jnp.float32)
    if rewards.ndim != 1 or group_size < 1 or rewards.shape[0] % group_size:
        raise ValueError(
            f"rewards of shape {rewards.shape} do not split into groups of "
            f"{group_size}; expected [num_groups * group_size]"
        )
    return rewards.reshape(-1, group_size)


def _centred(rewards: jax.Array, group_size: int) -> jax.Array:
    """R_i - mean(R) per group, [num_groups, G]; exactly 0 in groups of equal rewards (the
    float32 mean of G equal values can be off by an ulp, which grpo's 1/(std + eps) would
    otherwise blow up to a spurious advantage of order 0.1)."""
    grouped = _grouped(rewards, group_size)
    centred = grouped - jnp.mean(grouped, axis=1, keepdims=True)
    all_equal = jnp.max(grouped, axis=1, keepdims=True) == jnp.min(grouped, axis=1, keepdims=True)
    return jnp.where(all_equal, 0.0, centred)


@register_advantage_estimator("grpo")
def grpo_advantages(rewards: jax.Array, group_size: int, *, eps: float = 1e-6) -> jax.Array:
    """(R_i - mean) / (std_{ddof=1} + eps) within each group; 0 for G == 1."""
    centred = _centred(rewards, group_size)
    if group_size == 1:
        return jnp.zeros_like(centred).reshape(-1)
    std = jnp.sqrt(jnp.sum(jnp.square(centred), axis=1, keepdims=True) / (group_size - 1))
    return (centred / (std + eps)).reshape(-1)


@register_advantage_estimator("drgrpo")
def drgrpo_advantages(rewards: jax.Array, group_size: int, *, eps: float = 1e-6) -> jax.Array:
    """R_i - mean within each group (`eps` unused); 0 for G == 1."""
    del eps
    return _centred(rewards, group_size).reshape(-1)


@register_advantage_estimator("rloo")
def rloo_advantages(rewards: jax.Array, group_size: int, *, eps: float = 1e-6) -> jax.Array:
    """R_i minus the mean of the other G - 1 rewards of its group; 0 for G == 1."""
    del eps
    centred = _centred(rewards, group_size)
    if group_size == 1:
        return jnp.zeros_like(centred).reshape(-1)
    return (centred * (group_size / (group_size - 1))).reshape(-1)
