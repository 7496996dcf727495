"""The job config schema and its validation, run before anything is compiled.

A job config (an ml_collections ConfigDict returned by `get_config()` in a file under configs/)
is a list of *stages* that run in order in one workdir, plus an optional tokenizer to train
first:

    config.tokenizer          where the tokenizer comes from (an existing path, or trained)
    config.stages.<name>      one training run each: model, mesh, data, objective, optimizer,
                              train (see `stage_config()` for every field and its default)
    config.evals.<name>       optional: an eval of a stage's export, run after the stages
                              (`reasonrl.train.job_evals`)

A stage's `model.init_from` may name another stage: it starts from that stage's final params,
so it runs after it. Stages run in that dependency order, ties broken by name (`stage_order`).
`validate_job` checks every field against this schema — an unknown key, a wrong type, a batch
that does not split over the mesh, a missing file, an empty tokenizer corpus — and raises one
`JobConfigError` naming the dotted field (and the config file). What needs the tokenizer (the
data of every stage, the model's vocabulary) is checked next, still before anything trains, by
`reasonrl.train.preflight.check_job_inputs`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import NoReturn

import ml_collections

from reasonrl.data.spec import SpecError
from reasonrl.data.tokenizer.training import require_corpus
from reasonrl.errors import ReasonRLError
from reasonrl.models.config import ModelConfig
from reasonrl.models.presets import PRESETS
from reasonrl.objectives.registry import OBJECTIVES, ObjectiveOptionError
from reasonrl.parallel.mesh import MeshConfig, MeshError
from reasonrl.train.job_evals import JOB_EVALS, eval_config
from reasonrl.train.loops import get_loop, loop_options
from reasonrl.train.optimizer import SCHEDULES
from reasonrl.train.step import NONFINITE_MODES

# Sections whose keys are checked elsewhere: data specs by reasonrl.data, objective options by
# the objective registry, model overrides against ModelConfig.
_FREE_SECTIONS = ("data", "eval_data", "objective", "overrides", "options")


class JobConfigError(ReasonRLError, ValueError):
    """A job config that cannot run; the message names the field."""


def tokenizer_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        dict(
            path="",  # an existing tokenizer (.model, tokenizer.json or a directory); or:
            train_on="",  # a text corpus to train a sentencepiece tokenizer on, into workdir
            vocab_size=2048,
            thinking_markers=False,  # trained: also make <think> / </think> single ids (RLP)
        )
    )


def stage_config() -> ml_collections.ConfigDict:
    """Every field of a training stage, with its default (a loop's own section, such as `rl`,
    comes from that loop: `reasonrl.train.loops`)."""
    return ml_collections.ConfigDict(
        dict(
            model=dict(
                preset="tiny-qwen3",  # a name in reasonrl.models.PRESETS ...
                hf_checkpoint="",  # ... or a Hugging Face checkpoint directory to start from
                init_from="",  # ... or the name of another stage of this job (runs after it)
                overrides={},  # ModelConfig fields, e.g. {"dtype": "bfloat16", "num_layers": 4}
                vocab_from_tokenizer=True,  # fresh models: vocab_size = the tokenizer's
            ),
            mesh=dict(data=1, fsdp=-1, tensor=1),
            data={},  # a reasonrl.data spec (source / task / packing ...)
            eval_data={},  # optional; same format
            objective=dict(name="next_token"),  # its loop (reasonrl.train.loops) may add a
            # section of its own, e.g. `rl` (reasonrl.rl.loop.rl_options()) for policy_gradient
            optimizer=dict(
                learning_rate=3e-4,
                schedule="cosine",
                warmup_steps=100,
                total_steps=0,
                end_lr_fraction=0.1,
                b1=0.9,
                b2=0.95,
                eps=1e-8,
                weight_decay=0.1,
                clip_norm=1.0,
            ),
            train=dict(
                steps=1000,
                batch_size=8,
                seq_len=256,
                grad_accum=1,
                seed=0,
                # supervised loop: logical data shards of the global batch (each its own record
                # stream + packer; reasonrl.data.layout), fixed whatever the process count;
                # must divide batch_size; 1: one stream; 0: one per row of batch_size. Several
                # processes need a multiple of their count: then 1 process gives the same run.
                data_shards=1,
                log_every=10,
                eval_every=0,
                eval_batches=4,
                checkpoint_every=100,
                keep_checkpoints=3,
                async_checkpointing=True,
                on_nonfinite="stop",  # "stop": halt naming the step; "skip": drop that update
                export_hf=True,  # write a Hugging Face checkpoint of the final params
            ),
        )
    )


def job_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.tokenizer = tokenizer_config()
    config.stages = ml_collections.ConfigDict()
    config.evals = ml_collections.ConfigDict()
    return config


def _where(config_file: str | None) -> str:
    return f" (in {config_file})" if config_file else ""


def _check_keys(
    section, schema, prefix: str, config_file: str | None, extra: tuple[str, ...] = ()
) -> None:
    """Unknown keys and wrong types, recursively; keys in `extra` are checked by the caller."""
    for key in section.keys():
        field = f"{prefix}.{key}"
        if key in extra:
            continue
        if key not in schema:
            close = [k for k in schema.keys() if k[:3] == key[:3]]
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {sorted(schema.keys())}"
            raise JobConfigError(f"{field}: unknown key{hint}{_where(config_file)}")
        value, default = section[key], schema[key]
        if isinstance(default, ml_collections.ConfigDict):
            if key in _FREE_SECTIONS:
                continue
            if not isinstance(value, ml_collections.ConfigDict):
                raise JobConfigError(
                    f"{field}: expected a section, got {value!r}{_where(config_file)}"
                )
            _check_keys(value, default, field, config_file)
        elif not _same_type(value, default):
            raise JobConfigError(
                f"{field}: expected {type(default).__name__}, got "
                f"{type(value).__name__} {value!r}{_where(config_file)}"
            )


def _same_type(value, default) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, type(default))


def job_error(message: str, config_file: str | None = None) -> JobConfigError:
    """A JobConfigError from a `message` that starts with the dotted field (plus the file)."""
    return JobConfigError(f"{message}{_where(config_file)}")


def fail(field: str, message: str, config_file: str | None = None) -> NoReturn:
    """Raises JobConfigError naming the dotted `field` (and the config file)."""
    raise job_error(f"{field}: {message}", config_file)


def validate_stage(
    stage, name: str, earlier: list[str], num_devices: int, config_file: str | None = None
) -> None:
    prefix = f"stages.{name}"
    objective = stage.get("objective") or {}
    if objective.get("name") not in OBJECTIVES:
        fail(
            f"{prefix}.objective.name",
            f"unknown objective {objective.get('name')!r}; registered: {sorted(OBJECTIVES)}",
            config_file,
        )
    loop = get_loop(OBJECTIVES[objective.name].loop)
    section = (loop.name,) if loop.options is not None else ()
    _check_keys(stage, stage_config(), prefix, config_file, extra=section)
    if section and loop.name in stage:
        _check_keys(stage[loop.name], loop.options(), f"{prefix}.{loop.name}", config_file)
    model, train, opt = stage.model, stage.train, stage.optimizer

    # Where the params come from, by precedence: init_from > hf_checkpoint > preset.
    if model.init_from and model.hf_checkpoint:
        fail(f"{prefix}.model", "set init_from or hf_checkpoint, not both", config_file)
    if model.init_from:
        if model.init_from not in earlier:
            fail(
                f"{prefix}.model.init_from",
                f"{model.init_from!r} is not an earlier stage (earlier: {earlier})",
                config_file,
            )
    elif model.hf_checkpoint:
        if not os.path.isdir(model.hf_checkpoint):
            fail(
                f"{prefix}.model.hf_checkpoint",
                f"directory {model.hf_checkpoint} does not exist",
                config_file,
            )
    elif model.preset not in PRESETS:
        fail(
            f"{prefix}.model.preset",
            f"unknown preset {model.preset!r}; available: {sorted(PRESETS)}",
            config_file,
        )
    known_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    for key in model.overrides.keys():
        if key not in known_fields:
            fail(
                f"{prefix}.model.overrides.{key}",
                f"not a ModelConfig field ({sorted(known_fields)})",
                config_file,
            )

    try:
        sizes = MeshConfig.from_value(stage.mesh.to_dict()).resolve(num_devices)
    except MeshError as error:
        fail(f"{prefix}.mesh", str(error), config_file)
    batch_shards = sizes[0] * sizes[1]
    for key in ("steps", "batch_size", "seq_len", "grad_accum", "log_every", "keep_checkpoints"):
        if train[key] < 1:
            fail(f"{prefix}.train.{key}", f"must be >= 1, got {train[key]}", config_file)
    rows = train.batch_size  # rows of one optimizer update, unless the loop says otherwise
    if loop.validate is not None:
        complete = stage.copy_and_resolve_references()
        if section:
            with complete.unlocked():
                complete[loop.name] = loop_options(stage, loop)
        rows = loop.validate(complete, prefix, config_file)
    if train.data_shards < 0 or (train.data_shards and train.batch_size % train.data_shards):
        fail(
            f"{prefix}.train.data_shards",
            f"{train.data_shards} logical data shards must divide train.batch_size="
            f"{train.batch_size} (0: one shard per row)",
            config_file,
        )
    if rows % train.grad_accum:
        fail(
            f"{prefix}.train.batch_size",
            f"{rows} rows per update do not split into grad_accum={train.grad_accum} micro-batches",
            config_file,
        )
    micro = rows // train.grad_accum
    if micro % batch_shards:
        fail(
            f"{prefix}.train.batch_size",
            f"micro-batch of {micro} rows (rows per update / "
            f"grad_accum) does not divide over data*fsdp={batch_shards} devices",
            config_file,
        )
    if train.on_nonfinite not in NONFINITE_MODES:
        fail(
            f"{prefix}.train.on_nonfinite",
            f"{train.on_nonfinite!r}; choose from {NONFINITE_MODES}",
            config_file,
        )
    if opt.schedule not in SCHEDULES:
        fail(
            f"{prefix}.optimizer.schedule",
            f"{opt.schedule!r}; choose from {SCHEDULES}",
            config_file,
        )
    if opt.learning_rate < 0:
        fail(f"{prefix}.optimizer.learning_rate", "must be >= 0", config_file)

    allowed = OBJECTIVES[objective.name].defaults
    for key in objective.keys():
        if key != "name" and key not in allowed:
            fail(
                f"{prefix}.objective.{key}",
                f"not an option of objective {objective.name!r} (options: {sorted(allowed)})",
                config_file,
            )
    try:
        OBJECTIVES[objective.name].validate(objective_config(stage))
    except ObjectiveOptionError as error:
        fail(f"{prefix}.objective.{error.option}", error.message, config_file)
    except (TypeError, ValueError) as error:
        fail(f"{prefix}.objective", str(error), config_file)
    if not stage.data:
        fail(f"{prefix}.data", "no data spec", config_file)


def objective_config(stage) -> ml_collections.FrozenConfigDict:
    """The objective's options: registered defaults, overridden by the stage's values, then by
    what the objective's loop sets (`StageLoop.objective_options`)."""
    registered = OBJECTIVES[stage.objective.name]
    values = dict(registered.defaults)
    values.update({k: v for k, v in stage.objective.items() if k != "name"})
    loop = get_loop(registered.loop)
    values.update(loop.objective_options(loop_options(stage, loop)))
    return ml_collections.FrozenConfigDict(values)


def validate_job(config, num_devices: int, config_file: str | None = None) -> None:
    """Raises JobConfigError on the first problem; returns None when the job can run."""
    for key in config.keys():
        if key not in ("tokenizer", "stages", "evals"):
            fail(
                f"config.{key}",
                "unknown key; a job has 'tokenizer', 'stages' and 'evals'",
                config_file,
            )
    _check_keys(config.tokenizer, tokenizer_config(), "tokenizer", config_file)
    tok = config.tokenizer
    if tok.path and tok.train_on:
        fail("tokenizer", "set either path or train_on, not both", config_file)
    if not tok.path and not tok.train_on:
        fail("tokenizer", "set path (an existing tokenizer) or train_on (a corpus)", config_file)
    for field in ("path", "train_on"):
        if tok[field] and not os.path.exists(tok[field]):
            fail(f"tokenizer.{field}", f"{tok[field]} does not exist", config_file)
    if tok.train_on:
        try:
            require_corpus(tok.train_on)
        except (SpecError, FileNotFoundError) as error:
            fail("tokenizer.train_on", str(error), config_file)
    if not config.stages:
        fail("stages", "the job has no stages", config_file)
    earlier: list[str] = []
    for name in stage_order(config, config_file):
        validate_stage(config.stages[name], name, earlier, num_devices, config_file)
        earlier.append(name)
    for name, entry in (config.get("evals") or {}).items():
        validate_eval(entry, name, config, config_file)


def validate_eval(entry, name: str, config, config_file: str | None = None) -> None:
    """One `config.evals.<name>`: known keys, a registered kind, a stage of the job that
    exports, and options the kind accepts."""
    stages = sorted(config.stages.keys())

    def config_stage_exports(stage: str) -> bool:
        return bool(config.stages[stage].train.export_hf)

    prefix = f"evals.{name}"
    if not isinstance(entry, ml_collections.ConfigDict):
        fail(prefix, f"expected a section, got {entry!r}", config_file)
    _check_keys(entry, eval_config(), prefix, config_file)
    if entry.get("kind") not in JOB_EVALS:
        fail(
            f"{prefix}.kind",
            f"unknown eval {entry.get('kind')!r}; registered: {sorted(JOB_EVALS)}",
            config_file,
        )
    if entry.get("stage") not in stages:
        fail(f"{prefix}.stage", f"{entry.get('stage')!r} is not a stage ({stages})", config_file)
    if not config_stage_exports(entry.stage):
        fail(f"{prefix}.stage", f"stage {entry.stage!r} sets train.export_hf=False", config_file)
    options = entry.get("options")
    try:
        JOB_EVALS[entry.kind].check({} if options is None else options.to_dict())
    except (TypeError, ValueError) as error:
        fail(f"{prefix}.options", str(error), config_file)


def stage_order(config, config_file: str | None = None) -> list[str]:
    """Stage names in run order: every stage after the stage it is `init_from`, ties by name.

    Raises JobConfigError when init_from names no stage of the job or the stages form a cycle.
    """
    parents = {name: stage.model.init_from for name, stage in config.stages.items()}
    for name, parent in parents.items():
        if parent and parent not in parents:
            fail(
                f"stages.{name}.model.init_from",
                f"{parent!r} is not a stage of this job (stages: {sorted(parents)})",
                config_file,
            )
    order: list[str] = []
    pending = sorted(parents)
    while pending:
        ready = [name for name in pending if not parents[name] or parents[name] in order]
        if not ready:
            fail(
                f"stages.{pending[0]}.model.init_from",
                f"stages {pending} start from each other in a cycle",
                config_file,
            )
        order.append(ready[0])
        pending.remove(ready[0])
    return order
