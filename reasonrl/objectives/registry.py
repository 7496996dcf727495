"""Objectives by name.

An objective is a pure, jit-able function

    loss(params, batch, rng, *, model: ModelContext, config) -> (loss_sum, denominator, metrics)

`loss_sum` is a float32 scalar to be divided by the *global* `denominator` (summed over
micro-batches and devices) so gradient accumulation and packing give exact means; `metrics` is a
dict of `reasonrl.objectives.metrics` values (Mean / Max / Min) that merge exactly.

What an objective needs from the stage engine beyond the decoder's params and the data batch
it declares when it registers (no loop has per-objective branches):

  loop="supervised"             the stage loop that feeds it (`reasonrl.train.loops`): data
                                batches ("supervised") or sampled rollouts ("rl");
  params=ParamsHooks(...)       its trainable params wrap the decoder's (e.g. a reward head):
                                how to build, shard and export them (default: the decoder's);
  reference=ReferenceHook(...)  batch fields computed under the frozen initial params (DPO's
                                reference log-probs, the policy gradient's KL reference), added
                                to every train/eval batch; loaded only when the hook is needed;
  state=StateHook(...)          state it keeps next to the params in the train state and
                                updates after every applied optimizer step (RLP's EMA teacher):
                                checkpointed and restored with the params;
  validate=fn                   checks the option values (raises ObjectiveOptionError naming
                                the option), run with the config validation before anything
                                loads or compiles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import jax
from jax.sharding import Mesh

from reasonrl.errors import ReasonRLError
from reasonrl.models import ModelConfig, hidden_states
from reasonrl.models.layers import ActivationSharding


@dataclasses.dataclass(frozen=True)
class ModelContext:
    """What an objective needs to run the model: its config and activation sharding."""

    config: ModelConfig
    sharding: ActivationSharding | None = None

    def hidden(self, params, batch: dict) -> jax.Array:
        """Final hidden states [B, T, D] for a batch with tokens / positions / segment_ids."""
        out, _ = hidden_states(
            self.config,
            params,
            batch["tokens"],
            batch["positions"],
            batch["segment_ids"],
            sharding=self.sharding,
        )
        return out


class Objective(Protocol):
    def __call__(
        self, params, batch: dict, rng: jax.Array, *, model: ModelContext, config: Any
    ) -> tuple[jax.Array, jax.Array, dict]: ...


def _no_extra_files(config: ModelConfig, params, directory: Path) -> None:
    del config, params, directory


@dataclasses.dataclass(frozen=True)
class ParamsHooks:
    """How an objective's trainable params relate to the decoder's (default: they are equal).

    build(config, decoder_params, rng) -> params
        The initial trainable params from the stage's decoder params (a preset's fresh init, a
        Hugging Face checkpoint or an earlier stage's export), e.g. adding a freshly initialised
        head. Runs eagerly, once per stage build; must be deterministic given `rng`.
    shardings(config, decoder_shardings, mesh) -> shardings of params (same tree as build's).
    decoder(params) -> decoder params: what the stage exports as a Hugging Face checkpoint.
    save_extra(config, params, export_dir): writes any other export files (after the
        checkpoint). Called on every process; only process 0 may write.
    """

    build: Callable[[ModelConfig, Any, jax.Array], Any] = lambda config, params, rng: params
    shardings: Callable[[ModelConfig, Any, Mesh], Any] = lambda config, shardings, mesh: shardings
    decoder: Callable[[Any], Any] = lambda params: params
    save_extra: Callable[[ModelConfig, Any, Path], None] = _no_extra_files


@dataclasses.dataclass(frozen=True)
class ReferenceHook:
    """Batch fields computed under a frozen copy of the stage's initial params.

    fields(params, batch, *, model: ModelContext, config) -> dict of [B, ...] arrays
        Pure and jit-able; `params` is the frozen reference (the stage's initial trainable
        params, re-derived from the model source on resume, never the resumed ones). The
        engine runs it on every train and eval batch and adds its outputs to the batch.
    needed(config) -> bool
        Whether the objective's options use the reference at all (e.g. only when a KL
        coefficient is > 0); when False the reference params are never copied or loaded.
    """

    fields: Callable[..., dict]
    needed: Callable[[Any], bool] = lambda config: True


@dataclasses.dataclass(frozen=True)
class StateHook:
    """Objective state that lives in the train state (`TrainState.extra`) next to the params.

    init(params, config) -> extra
        A pytree built from the stage's initial trainable params, inside the jit that creates
        the train state (for a resumed run it is then replaced by the checkpointed one).
    update(extra, params, config) -> extra
        Pure and jit-able; runs inside the train step after each applied optimizer update,
        with the updated params (a skipped non-finite update leaves `extra` as it was).
    shardings(param_shardings, mesh) -> shardings of extra (same tree as init's), e.g. the
        params' own for a copy of them.
    """

    init: Callable[[Any, Any], Any]
    update: Callable[[Any, Any, Any], Any]
    shardings: Callable[[Any, Mesh], Any]


class ObjectiveOptionError(ReasonRLError, ValueError):
    """An objective option with a value the objective cannot use; `option` names it."""

    def __init__(self, option: str, message: str):
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


def check_option(valid: bool, option: str, message: str) -> None:
    """Raises ObjectiveOptionError(option, message) unless `valid` (for `validate` functions)."""
    if not valid:
        raise ObjectiveOptionError(option, message)


def check_chunk_size(config) -> None:
    """The `logits_chunk_size` option every log-prob objective has: a positive integer."""
    check_option(
        int(config.logits_chunk_size) >= 1,
        "logits_chunk_size",
        f"must be >= 1, got {config.logits_chunk_size}",
    )


@dataclasses.dataclass(frozen=True)
class RegisteredObjective:
    """An objective and its options with their defaults (the schema its config is checked
    against: an option not listed here is a config error), plus what it needs from the trainer
    (`params`, `reference`; see the module docstring)."""

    name: str
    fn: Objective
    defaults: dict[str, Any]
    loop: str = "supervised"
    params: ParamsHooks = ParamsHooks()
    reference: ReferenceHook | None = None
    validate: Callable[[Any], None] = lambda config: None
    state: StateHook | None = None

    def needs_reference(self, config) -> bool:
        """Whether a stage with these options needs the frozen reference params."""
        return self.reference is not None and bool(self.reference.needed(config))


OBJECTIVES: dict[str, RegisteredObjective] = {}


def register_objective(
    name: str,
    *,
    loop: str = "supervised",
    params: ParamsHooks | None = None,
    reference: ReferenceHook | None = None,
    validate: Callable[[Any], None] | None = None,
    state: StateHook | None = None,
    **defaults,
) -> Callable[[Objective], Objective]:
    """Registers `fn` under `name`; other keyword arguments are its config options and their
    defaults. `loop`, `params`, `reference`, `validate` and `state` declare how the engine runs
    it (see the module docstring), so they cannot be option names."""

    def decorator(fn: Objective) -> Objective:
        if name in OBJECTIVES:
            raise ValueError(f"objective {name!r} is already registered")
        OBJECTIVES[name] = RegisteredObjective(
            name,
            fn,
            dict(defaults),
            loop,
            params or ParamsHooks(),
            reference,
            validate or (lambda config: None),
            state,
        )
        return fn

    return decorator


def get_objective(name: str) -> RegisteredObjective:
    if name not in OBJECTIVES:
        raise KeyError(f"unknown objective {name!r}; registered: {sorted(OBJECTIVES)}")
    return OBJECTIVES[name]
