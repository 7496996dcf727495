"""Objectives by name.

An objective is a pure, jit-able function

    loss(params, batch, rng, *, model: ModelContext, config) -> (loss_sum, denominator, metrics)

`loss_sum` is a float32 scalar to be divided by the *global* `denominator` (summed over
micro-batches and devices) so gradient accumulation and packing give exact means; `metrics` is a
dict of `reasonrl.objectives.metrics` values (Mean / Max / Min) that merge exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol

import jax

from reasonrl.models import ModelConfig, hidden_states
from reasonrl.models.layers import ActivationSharding


@dataclasses.dataclass(frozen=True)
class ModelContext:
    """What an objective needs to run the model: its config and activation sharding."""

    config: ModelConfig
    sharding: ActivationSharding | None = None

    def hidden(self, params, batch: dict) -> jax.Array:
        """Final hidden states [B, T, D] for a batch with tokens / positions / segment_ids."""
        out, _ = hidden_states(self.config, params, batch["tokens"], batch["positions"],
                               batch["segment_ids"], sharding=self.sharding)
        return out


class Objective(Protocol):
    def __call__(self, params, batch: dict, rng: jax.Array, *, model: ModelContext,
                 config: Any) -> tuple[jax.Array, jax.Array, dict]: ...


@dataclasses.dataclass(frozen=True)
class RegisteredObjective:
    """An objective and its options with their defaults (the schema its config is checked
    against: an option not listed here is a config error)."""

    name: str
    fn: Objective
    defaults: dict[str, Any]


OBJECTIVES: dict[str, RegisteredObjective] = {}


def register_objective(name: str, **defaults) -> Callable[[Objective], Objective]:
    """Registers `fn` under `name`; keyword arguments are its config options and defaults."""
    def decorator(fn: Objective) -> Objective:
        if name in OBJECTIVES:
            raise ValueError(f"objective {name!r} is already registered")
        OBJECTIVES[name] = RegisteredObjective(name, fn, dict(defaults))
        return fn
    return decorator


def get_objective(name: str) -> RegisteredObjective:
    if name not in OBJECTIVES:
        raise KeyError(f"unknown objective {name!r}; registered: {sorted(OBJECTIVES)}")
    return OBJECTIVES[name]
