r"""Reward functions, registered by name so RL configs can pick them (``reward: math_correctness``).

A reward function maps ``(completion, gold) -> float``. It may also have a batched form, used by
:func:`compute_rewards`, that grades a whole rollout batch at once through the worker pool.

Registered rewards:

* ``math_correctness`` -- 1.0 if the completion's final answer is equivalent to the gold answer,
  else 0.0. Uses :func:`~reasonrl.rewards.grade` with its default extraction (boxed answer, then
  the documented fallbacks), i.e. exactly what evals count.
* ``math_correctness_strict`` -- the same, but only a final ``\boxed{}`` answer counts (no
  fallbacks), so a model is never rewarded for a number that happens to end its text.
* ``format`` -- 1.0 if the completion is well formed, else 0.0 (the gold answer is ignored):

  1. it has a final ``\boxed{...}`` answer: the last box command in the text is closed and not
     empty;
  2. ``<think>`` and ``</think>`` each appear at most once; if ``<think>`` appears, only
     whitespace precedes it and ``</think>`` follows it (a completion may also contain just
     ``</think>``, for chat templates that open the think block in the prompt);
  3. if ``</think>`` appears, the final box comes after it (the answer is outside the thinking).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from reasonrl.rewards.equivalence import DEFAULT_TIMEOUT_S
from reasonrl.rewards.extraction import find_last_boxed
from reasonrl.rewards.grading import grade, grade_batch

__all__ = [
    "REWARDS",
    "RewardFn",
    "compute_rewards",
    "format_reward",
    "get_reward",
    "math_correctness_reward",
    "math_correctness_strict_reward",
    "register_reward",
]

RewardFn = Callable[[str, str], float]
BatchRewardFn = Callable[[Sequence[str], Sequence[str]], list]

REWARDS: dict[str, RewardFn] = {}
"""All registered reward functions by name."""

_BATCH_REWARDS: dict[str, BatchRewardFn] = {}


def register_reward(
    name: str, *, batch_fn: BatchRewardFn | None = None
) -> Callable[[RewardFn], RewardFn]:
    """Decorator registering ``fn(completion, gold) -> float`` under ``name``.

    ``batch_fn(completions, golds) -> list[float]``, if given, must return the same values as
    calling ``fn`` on each pair; :func:`compute_rewards` uses it.
    """

    def decorator(fn: RewardFn) -> RewardFn:
        if name in REWARDS:
            raise ValueError(f"reward {name!r} is already registered")
        REWARDS[name] = fn
        if batch_fn is not None:
            _BATCH_REWARDS[name] = batch_fn
        return fn

    return decorator


def get_reward(name: str) -> RewardFn:
    """The reward function registered as ``name``."""
    try:
        return REWARDS[name]
    except KeyError:
        raise KeyError(f"unknown reward {name!r}; registered: {sorted(REWARDS)}") from None


def compute_rewards(name: str, completions: Sequence[str], golds: Sequence[str]) -> list[float]:
    """Rewards for a batch, using the reward's batched form when it has one."""
    if len(completions) != len(golds):
        raise ValueError(f"{len(completions)} completions but {len(golds)} gold answers")
    fn = get_reward(name)
    batch_fn = _BATCH_REWARDS.get(name)
    if batch_fn is not None:
        return [float(value) for value in batch_fn(completions, golds)]
    return [float(fn(completion, gold)) for completion, gold in zip(completions, golds)]


def _math_correctness_batch(completions: Sequence[str], golds: Sequence[str]) -> list[float]:
    return [float(result.correct) for result in grade_batch(completions, golds)]


def _math_correctness_strict_batch(completions: Sequence[str], golds: Sequence[str]) -> list[float]:
    return [float(result.correct) for result in grade_batch(completions, golds, fallbacks=False)]


@register_reward("math_correctness", batch_fn=_math_correctness_batch)
def math_correctness_reward(
    completion: str, gold: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> float:
    """1.0 if the completion's final answer (boxed, or by fallback) equals ``gold``, else 0.0."""
    return float(grade(completion, gold, timeout_s=timeout_s).correct)


@register_reward("math_correctness_strict", batch_fn=_math_correctness_strict_batch)
def math_correctness_strict_reward(
    completion: str, gold: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> float:
    """1.0 if the completion's final ``\\boxed{}`` answer equals ``gold``, else 0.0."""
    return float(grade(completion, gold, timeout_s=timeout_s, fallbacks=False).correct)


_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


@register_reward("format")
def format_reward(completion: str, gold: str | None = None) -> float:
    """1.0 if the completion follows the answer format in the module docstring, else 0.0."""
    del gold  # the format does not depend on the answer
    boxed = find_last_boxed(completion)
    if boxed.answer is None:
        return 0.0
    if completion.count(_THINK_OPEN) > 1 or completion.count(_THINK_CLOSE) > 1:
        return 0.0
    open_at = completion.find(_THINK_OPEN)
    close_at = completion.find(_THINK_CLOSE)
    if open_at >= 0:
        if completion[:open_at].strip() or close_at < open_at:
            return 0.0
    if close_at >= 0 and boxed.start < close_at + len(_THINK_CLOSE):
        return 0.0
    return 1.0
