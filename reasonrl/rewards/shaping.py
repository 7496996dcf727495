r"""Reward shaping for RL on reasoning: length penalties, overlong punishment, format bonus.

Pure NumPy functions on one rollout batch, laid out like the advantage estimators
(:mod:`reasonrl.rl.advantages`): N = num_groups * G samples, the G samples of one prompt stored
contiguously (rows g*G .. g*G + G - 1). Lengths are response lengths in tokens.

Formulas (docs/methods.md §5):

* Kimi k1.5 length reward (arXiv 2501.12599; methods.md §5 "Kimi k1.5"), per group::

      λ_i = 0.5 − (len_i − min_len) / (max_len − min_len)      (λ_i = 0 if max_len == min_len)
      R_len_i = λ_i           if response i is correct
      R_len_i = min(0, λ_i)   if response i is wrong

  min_len / max_len are over the G responses to the same prompt. Kimi adds it with a weight and
  switches it on only after a warm-up phase; the warm-up schedule belongs to the trainer (pass
  ``length_penalty=None`` or weight 0 until then).

* DAPO soft overlong punishment (arXiv 2503.14476; methods.md §5 "DAPO"), per sample::

      R_over = 0                                  if |y| ≤ L_max − L_cache
      R_over = ((L_max − L_cache) − |y|) / L_cache  if L_max − L_cache < |y| ≤ L_max
      R_over = −1                                 if |y| > L_max

  added to the reward unweighted, as in DAPO.

* Format reward (DeepSeek-R1-Zero: rewards = accuracy + format; methods.md §5 "GRPO"): the
  caller's per-sample format scores (e.g. the registry's ``format`` reward), times
  ``format_weight``.

:func:`shape_rewards` sums the components::

    R = correctness + w_len · R_len + R_over + w_fmt · format

and returns a :class:`ShapedReward` with the total and each additive term for logging.
Length penalties are chosen by name from :data:`LENGTH_PENALTIES`
(:func:`register_length_penalty` adds more).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

__all__ = [
    "LENGTH_PENALTIES",
    "LengthPenaltyFn",
    "ShapedReward",
    "dapo_overlong_penalty",
    "get_length_penalty",
    "kimi_length_penalty",
    "register_length_penalty",
    "shape_rewards",
]


class LengthPenaltyFn(Protocol):
    def __call__(self, lengths: np.ndarray, correct: np.ndarray, group_size: int) -> np.ndarray:
        """lengths [N], correct bool [N], N = num_groups * group_size -> float32 [N]."""
        ...


LENGTH_PENALTIES: dict[str, LengthPenaltyFn] = {}
"""Group length penalties by name (``length_penalty: kimi`` in a config)."""


def register_length_penalty(name: str) -> Callable[[LengthPenaltyFn], LengthPenaltyFn]:
    """Decorator registering ``fn(lengths, correct, group_size) -> [N]`` under ``name``."""

    def decorator(fn: LengthPenaltyFn) -> LengthPenaltyFn:
        if name in LENGTH_PENALTIES:
            raise ValueError(f"length penalty {name!r} is already registered")
        LENGTH_PENALTIES[name] = fn
        return fn

    return decorator


def get_length_penalty(name: str) -> LengthPenaltyFn:
    """The length penalty registered as ``name``."""
    try:
        return LENGTH_PENALTIES[name]
    except KeyError:
        raise KeyError(
            f"unknown length penalty {name!r}; registered: {sorted(LENGTH_PENALTIES)}"
        ) from None


def _per_sample(name: str, values, n: int | None = None) -> np.ndarray:
    """A 1-D array of ``n`` per-sample values (any length if ``n`` is None)."""
    array = np.asarray(values)
    if array.ndim != 1 or (n is not None and array.shape[0] != n):
        want = "[N]" if n is None else f"[{n}]"
        raise ValueError(f"{name} has shape {array.shape}; expected {want}")
    return array


def _grouped(name: str, values, group_size: int) -> np.ndarray:
    """[num_groups * G] -> [num_groups, G]."""
    array = _per_sample(name, values)
    if group_size < 1 or array.shape[0] % group_size:
        raise ValueError(
            f"{name} of shape {array.shape} does not split into groups of "
            f"{group_size}; expected [num_groups * group_size]"
        )
    return array.reshape(-1, group_size)


@register_length_penalty("kimi")
def kimi_length_penalty(lengths, correct, group_size: int) -> np.ndarray:
    """Kimi k1.5 length reward, per group of ``group_size`` contiguous samples.

    λ_i = 0.5 − (len_i − min_len) / (max_len − min_len) over the sample's group (λ = 0 for every
    sample of a group whose lengths are all equal, which includes G == 1); the reward is λ_i for a
    correct response and min(0, λ_i) for a wrong one. So within a group it lies in [−0.5, 0.5]:
    the shortest correct answer gets +0.5, the longest gets −0.5, and wrong answers are never
    rewarded for being short.

    Args:
        lengths: response lengths, [num_groups * G].
        correct: whether each response is correct, bool (or 0/1) [num_groups * G].
        group_size: G.

    Returns:
        float32 [num_groups * G].
    """
    grouped = _grouped("lengths", lengths, group_size).astype(np.float64)
    correct = _per_sample("correct", correct, grouped.size).astype(bool).reshape(grouped.shape)
    min_len = grouped.min(axis=1, keepdims=True)
    span = grouped.max(axis=1, keepdims=True) - min_len
    lam = np.where(span > 0, 0.5 - (grouped - min_len) / np.where(span > 0, span, 1.0), 0.0)
    reward = np.where(correct, lam, np.minimum(0.0, lam))
    return reward.reshape(-1).astype(np.float32)


def dapo_overlong_penalty(lengths, max_length: int, cache_length: int) -> np.ndarray:
    """DAPO soft overlong punishment, per sample.

    With L_max = ``max_length`` and L_cache = ``cache_length``::

        0                                   if len ≤ L_max − L_cache
        ((L_max − L_cache) − len) / L_cache if L_max − L_cache < len ≤ L_max
        −1                                  if len > L_max

    It is continuous: 0 at L_max − L_cache, −1 at L_max. ``cache_length == 0`` gives the hard
    punishment (0 up to L_max, −1 beyond). DAPO uses L_max = 20,480 with a 4,096 cache.

    Args:
        lengths: response lengths, [N] (any 1-D layout; no grouping needed).
        max_length: L_max, in the same units as ``lengths``.
        cache_length: L_cache, with 0 ≤ L_cache ≤ L_max.

    Returns:
        float32 [N], in [−1, 0].
    """
    if not 0 <= cache_length <= max_length:
        raise ValueError(
            f"need 0 <= cache_length <= max_length; got cache_length="
            f"{cache_length}, max_length={max_length}"
        )
    lengths = _per_sample("lengths", lengths).astype(np.float64)
    soft_start = max_length - cache_length
    ramp = (soft_start - lengths) / max(cache_length, 1)  # used only when cache_length > 0
    penalty = np.where(lengths <= soft_start, 0.0, np.where(lengths <= max_length, ramp, -1.0))
    return penalty.astype(np.float32)


@dataclass(frozen=True)
class ShapedReward:
    """The shaped reward of a rollout batch.

    ``total`` float32 [N] is the reward to feed the advantage estimator. ``components`` maps each
    enabled term to its additive contribution, float32 [N] (already weighted), so that
    ``total == sum(components.values())`` up to float32 rounding. Keys: always
    ``"correctness"``; ``"length"`` (= w_len · R_len) when a length penalty is on;
    ``"overlong"`` when the overlong punishment is on; ``"format"`` (= w_fmt · format) when
    format scores are given.
    """

    total: np.ndarray
    components: dict[str, np.ndarray] = field(default_factory=dict)


_OVERLONG_KEYS = frozenset({"max_length", "cache_length"})


def shape_rewards(
    correctness,
    lengths,
    *,
    group_size: int,
    length_penalty: str | None = None,
    length_penalty_weight: float = 1.0,
    overlong: Mapping[str, int] | None = None,
    format_scores=None,
    format_weight: float = 0.0,
) -> ShapedReward:
    """Total shaped reward ``correctness + w_len·R_len + R_over + w_fmt·format``, [N].

    Args:
        correctness: outcome reward per sample, [N = num_groups * G] (e.g. 0/1, or DAPO's ±1).
            A sample counts as correct for the length penalty when this is > 0.
        lengths: response lengths, [N].
        group_size: G; N must be a multiple of it.
        length_penalty: a name in :data:`LENGTH_PENALTIES` (``"kimi"``), or None for none.
        length_penalty_weight: w_len (Kimi adds its length reward with a weight).
        overlong: ``{"max_length": L_max, "cache_length": L_cache}`` to add DAPO's soft overlong
            punishment, or None.
        format_scores: per-sample format reward, [N] (e.g. the registry's ``format``), or None.
        format_weight: w_fmt; must be 0 when ``format_scores`` is None.

    Returns:
        :class:`ShapedReward` with ``total`` float32 [N] and the per-component terms.
    """
    correctness = _grouped("correctness", correctness, group_size).reshape(-1).astype(np.float64)
    n = correctness.shape[0]
    lengths = _per_sample("lengths", lengths, n)
    components: dict[str, np.ndarray] = {"correctness": correctness}

    if length_penalty is not None:
        fn = get_length_penalty(length_penalty)
        components["length"] = length_penalty_weight * np.asarray(
            fn(lengths, correctness > 0, group_size), np.float64
        )

    if overlong is not None:
        keys = set(overlong)
        if keys != _OVERLONG_KEYS:
            raise ValueError(
                f"overlong needs exactly the keys {sorted(_OVERLONG_KEYS)}; got {sorted(keys)}"
            )
        components["overlong"] = dapo_overlong_penalty(
            lengths, overlong["max_length"], overlong["cache_length"]
        ).astype(np.float64)

    if format_scores is not None:
        scores = _per_sample("format_scores", format_scores, n).astype(np.float64)
        components["format"] = format_weight * scores
    elif format_weight != 0.0:
        raise ValueError("format_weight is set but no format_scores were given")

    total = np.sum(list(components.values()), axis=0) if n else np.zeros(0)
    return ShapedReward(
        total=np.asarray(total, np.float32),
        components={name: value.astype(np.float32) for name, value in components.items()},
    )
