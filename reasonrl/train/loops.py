"""Stage loops by name: what feeds an objective its batches.

Every objective names its loop when it registers (`register_objective(..., loop=...)`); a stage
runs in the loop of its objective. A loop is a short module on top of the stage engine
(`reasonrl.train.engine`) that says what one step does, and registers itself here:

    supervised   reasonrl.train.supervised   data batches from a grain pipeline (next_token,
                                             sft, reward_model, dpo)
    rl           reasonrl.rl.loop            rollouts sampled from the current policy, graded
                                             and turned into advantages (policy_gradient)
    rlp          reasonrl.rlp.loop           thoughts sampled at positions of plain documents,
                                             rewarded by their information gain (rlp)

A loop may own a section of the stage config named after it (`stage.rl` for the rl loop): its
`options()` are that section's fields and defaults, and `validate` checks them with the rest
of the job config, before anything loads or compiles. `reasonrl.job` imports every loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ml_collections


@dataclasses.dataclass(frozen=True)
class StageLoop:
    """A registered stage loop.

    name: the loop's name (objectives refer to it; also the name of its config section).
    run(stage, workdir, *, tokenizer, tokenizer_files=(), stage_exports=None, max_steps=None)
        -> reasonrl.train.engine.StageResult: runs or resumes a stage in `workdir`.
    options() -> ConfigDict: fields and defaults of `stage.<name>`; None when the loop has none.
    validate(stage, prefix, config_file) -> rows of one optimizer update; raises
        reasonrl.train.config.JobConfigError naming the field. `stage.<name>` is complete
        (defaults filled in) when it is called.
    objective_options(options) -> dict: objective options the loop sets from its own section
        `options` (e.g. the rl loop scores log-probs at its sampling temperature).
    check_data(stage, spec, tokenizer, where, prefix) -> None: builds one of the stage's data
        specs (`data`, `eval_data`) as the loop reads it and tries its first record, raising an
        error that names fields under `where` (the spec's dotted field) or `prefix` (the
        stage's); run by `reasonrl.train.preflight` before anything trains. None: no check.
    """

    name: str
    run: Callable[..., Any]
    options: Callable[[], ml_collections.ConfigDict] | None = None
    validate: Callable[[Any, str, str | None], int] | None = None
    objective_options: Callable[[Any], dict] = lambda options: {}
    check_data: Callable[..., None] | None = None


LOOPS: dict[str, StageLoop] = {}


def register_loop(loop: StageLoop) -> StageLoop:
    if loop.name in LOOPS:
        raise ValueError(f"stage loop {loop.name!r} is already registered")
    LOOPS[loop.name] = loop
    return loop


def get_loop(name: str) -> StageLoop:
    if name not in LOOPS:
        raise KeyError(
            f"stage loop {name!r} is not registered (registered: {sorted(LOOPS)}); "
            f"import reasonrl.job, which imports every loop"
        )
    return LOOPS[name]


def loop_options(stage, loop: StageLoop) -> ml_collections.ConfigDict | None:
    """The loop's section of `stage`: its defaults overridden by the stage's values."""
    if loop.options is None:
        return None
    options = loop.options()
    if loop.name in stage:
        options.update(stage[loop.name].to_dict())
    return options
