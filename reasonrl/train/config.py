"""The job config schema and its validation, run before anything is compiled.

A job config (an ml_collections ConfigDict returned by `get_config()` in a file under configs/)
is a list of *stages* that run in order in one workdir, plus an optional tokenizer to train
first:

    config.tokenizer          where the tokenizer comes from (an existing path, or trained)
    config.stages.<name>      one training run each: model, mesh, data, objective, optimizer,
                              train (see `stage_config()` for every field and its default)

A stage's `model.init_from` may name another stage: it starts from that stage's final params,
so it runs after it. Stages run in that dependency order, ties broken by name (`stage_order`).
`validate_job` checks every field against this schema — an unknown key, a wrong type, a batch
that does not split over the mesh, a missing file — and raises one `JobConfigError` naming the
dotted field (and the config file).
"""

from __future__ import annotations

import dataclasses
import os
import ml_collections

from reasonrl.models.config import ModelConfig
from reasonrl.models.presets import PRESETS
from reasonrl.objectives.registry import OBJECTIVES
from reasonrl.parallel.mesh import MeshConfig, MeshError
from reasonrl.train.optimizer import SCHEDULES
from reasonrl.train.step import NONFINITE_MODES

# Sections whose keys are checked elsewhere: data specs by reasonrl.data, objective options by
# the objective registry, model overrides against ModelConfig.
_FREE_SECTIONS = ("data", "eval_data", "objective", "overrides")


# Stage loops (reasonrl.train.job.STAGE_LOOPS maps each to its runner) and the objectives that
# only the RL loop can feed (they need rollouts: advantages, old log-probs).
STAGE_LOOPS = ("supervised", "rl")
RL_OBJECTIVES = ("policy_gradient",)


class JobConfigError(ValueError):
    """A job config that cannot run; the message names the field."""


def tokenizer_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        path="",  # an existing tokenizer (.model, tokenizer.json or a directory); or:
        train_on="",  # a text corpus to train a sentencepiece tokenizer on, into workdir
        vocab_size=2048,
    ))


def rl_config() -> ml_collections.ConfigDict:
    """The RL loop's options (see reasonrl/rl/trainer.py). A stage with loop="rl" reads its
    prompts (with gold answers) from `data` and trains `objective` (policy_gradient) on them;
    `train.batch_size` is prompts per rollout step and `train.steps` counts rollout steps."""
    return ml_collections.ConfigDict(dict(
        prompt_field="question", answer_field="answer",
        prompt_template="plain",  # reasonrl.data.prompt_templates.PROMPT_TEMPLATES
        chat_template="chatml",
        group_size=8,  # G samples per prompt (they share one prefill)
        max_new_tokens=64,  # completion budget; prompts get train.seq_len - max_new_tokens
        temperature=1.0, top_p=1.0, top_k=0,
        reward="math_correctness",  # reasonrl.rewards.REWARDS
        wrong_reward=0.0,  # correctness reward of a wrong answer (DAPO: -1.0)
        format_weight=0.0,  # > 0 adds w * the `format` reward
        length_penalty="",  # reasonrl.rewards.shaping.LENGTH_PENALTIES name, "" for none
        length_penalty_weight=1.0,
        overlong_cache_length=0,  # > 0: DAPO soft overlong punishment, L_max = max_new_tokens
        advantage="grpo",  # reasonrl.rl.ADVANTAGE_ESTIMATORS
        dynamic_sampling=False,  # DAPO: keep only groups with unequal rewards, refill
        max_rollout_rounds=4,  # dynamic sampling: rollout rounds per step at most
        num_minibatches=1,  # optimizer updates per epoch over one rollout batch
        update_epochs=1,  # passes over the rollout batch (mu = num_minibatches * epochs)
        eval_size=0,  # > 0: greedy accuracy on the first eval_size records of eval_data
    ))


def stage_config() -> ml_collections.ConfigDict:
    """Every field of a training stage, with its default."""
    return ml_collections.ConfigDict(dict(
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
        objective=dict(name="next_token"),
        loop="supervised",  # a name in reasonrl.train.job.STAGE_LOOPS: supervised | rl
        rl=rl_config(),  # read only when loop == "rl"
        optimizer=dict(learning_rate=3e-4, schedule="cosine", warmup_steps=100, total_steps=0,
                       end_lr_fraction=0.1, b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.1,
                       clip_norm=1.0),
        train=dict(
            steps=1000, batch_size=8, seq_len=256, grad_accum=1, seed=0,
            log_every=10, eval_every=0, eval_batches=4,
            checkpoint_every=100, keep_checkpoints=3, async_checkpointing=True,
            on_nonfinite="stop",  # "stop": halt naming the step; "skip": drop that update
            export_hf=True,  # write a Hugging Face checkpoint of the final params
        ),
    ))


def job_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.tokenizer = tokenizer_config()
    config.stages = ml_collections.ConfigDict()
    return config


def _where(config_file: str | None) -> str:
    return f" (in {config_file})" if config_file else ""


def _check_keys(section, schema, prefix: str, config_file: str | None) -> None:
    """Unknown keys and wrong types, recursively."""
    for key in section.keys():
        field = f"{prefix}.{key}"
        if key not in schema:
            close = [k for k in schema.keys() if k[:3] == key[:3]]
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {sorted(schema.keys())}"
            raise JobConfigError(f"{field}: unknown key{hint}{_where(config_file)}")
        value, default = section[key], schema[key]
        if isinstance(default, ml_collections.ConfigDict):
            if key in _FREE_SECTIONS:
                continue
            if not isinstance(value, ml_collections.ConfigDict):
                raise JobConfigError(f"{field}: expected a section, got {value!r}"
                                     f"{_where(config_file)}")
            _check_keys(value, default, field, config_file)
        elif not _same_type(value, default):
            raise JobConfigError(f"{field}: expected {type(default).__name__}, got "
                                 f"{type(value).__name__} {value!r}{_where(config_file)}")


def _same_type(value, default) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, type(default))


def _fail(field: str, message: str, config_file: str | None):
    raise JobConfigError(f"{field}: {message}{_where(config_file)}")


def validate_stage(stage, name: str, earlier: list[str], num_devices: int,
                   config_file: str | None = None) -> None:
    prefix = f"stages.{name}"
    _check_keys(stage, stage_config(), prefix, config_file)
    model, train, opt = stage.model, stage.train, stage.optimizer

    # Where the params come from, by precedence: init_from > hf_checkpoint > preset.
    if model.init_from and model.hf_checkpoint:
        _fail(f"{prefix}.model", "set init_from or hf_checkpoint, not both", config_file)
    if model.init_from:
        if model.init_from not in earlier:
            _fail(f"{prefix}.model.init_from", f"{model.init_from!r} is not an earlier stage "
                  f"(earlier: {earlier})", config_file)
    elif model.hf_checkpoint:
        if not os.path.isdir(model.hf_checkpoint):
            _fail(f"{prefix}.model.hf_checkpoint",
                  f"directory {model.hf_checkpoint} does not exist", config_file)
    elif model.preset not in PRESETS:
        _fail(f"{prefix}.model.preset", f"unknown preset {model.preset!r}; available: "
              f"{sorted(PRESETS)}", config_file)
    known_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    for key in model.overrides.keys():
        if key not in known_fields:
            _fail(f"{prefix}.model.overrides.{key}", f"not a ModelConfig field "
                  f"({sorted(known_fields)})", config_file)

    try:
        sizes = MeshConfig.from_value(stage.mesh.to_dict()).resolve(num_devices)
    except MeshError as error:
        _fail(f"{prefix}.mesh", str(error), config_file)
    batch_shards = sizes[0] * sizes[1]
    if stage.loop not in STAGE_LOOPS:
        _fail(f"{prefix}.loop", f"{stage.loop!r}; choose from {STAGE_LOOPS}", config_file)
    loop_of_objective = "rl" if stage.objective.get("name") in RL_OBJECTIVES else "supervised"
    if loop_of_objective != stage.loop:
        _fail(f"{prefix}.loop", f"objective {stage.objective.get('name')!r} trains in the "
              f"{loop_of_objective!r} loop, not {stage.loop!r}", config_file)
    rows = train.batch_size  # rows of one optimizer update
    if stage.loop == "rl":
        rows = _validate_rl(stage, prefix, config_file)
    if rows % train.grad_accum:
        _fail(f"{prefix}.train.batch_size", f"{rows} rows per update do not split into "
              f"grad_accum={train.grad_accum} micro-batches", config_file)
    micro = rows // train.grad_accum
    if micro % batch_shards:
        _fail(f"{prefix}.train.batch_size", f"micro-batch of {micro} rows (rows per update / "
              f"grad_accum) does not divide over data*fsdp={batch_shards} devices", config_file)
    for key in ("steps", "batch_size", "seq_len", "grad_accum", "log_every", "keep_checkpoints"):
        if train[key] < 1:
            _fail(f"{prefix}.train.{key}", f"must be >= 1, got {train[key]}", config_file)
    if train.on_nonfinite not in NONFINITE_MODES:
        _fail(f"{prefix}.train.on_nonfinite", f"{train.on_nonfinite!r}; choose from "
              f"{NONFINITE_MODES}", config_file)
    if opt.schedule not in SCHEDULES:
        _fail(f"{prefix}.optimizer.schedule", f"{opt.schedule!r}; choose from {SCHEDULES}",
              config_file)
    if opt.learning_rate < 0:
        _fail(f"{prefix}.optimizer.learning_rate", "must be >= 0", config_file)

    objective = stage.objective
    if objective.get("name") not in OBJECTIVES:
        _fail(f"{prefix}.objective.name", f"unknown objective {objective.get('name')!r}; "
              f"registered: {sorted(OBJECTIVES)}", config_file)
    allowed = OBJECTIVES[objective.name].defaults
    for key in objective.keys():
        if key != "name" and key not in allowed:
            _fail(f"{prefix}.objective.{key}", f"not an option of objective "
                  f"{objective.name!r} (options: {sorted(allowed)})", config_file)
    if not stage.data:
        _fail(f"{prefix}.data", "no data spec", config_file)


def _validate_rl(stage, prefix: str, config_file: str | None) -> int:
    """Checks the `rl` section; returns the rows of one optimizer update."""
    from reasonrl.data.prompt_templates import PROMPT_TEMPLATES
    from reasonrl.data.tokenizer.chat_templates import CHAT_TEMPLATES
    from reasonrl.rewards import REWARDS
    from reasonrl.rewards.shaping import LENGTH_PENALTIES
    from reasonrl.rl.advantages import ADVANTAGE_ESTIMATORS

    rl, train = stage.rl, stage.train
    where = f"{prefix}.rl"
    for key, known in (("prompt_template", PROMPT_TEMPLATES), ("chat_template", CHAT_TEMPLATES),
                       ("reward", REWARDS), ("advantage", ADVANTAGE_ESTIMATORS)):
        if rl[key] not in known:
            _fail(f"{where}.{key}", f"{rl[key]!r}; choose from {sorted(known)}", config_file)
    if rl.length_penalty and rl.length_penalty not in LENGTH_PENALTIES:
        _fail(f"{where}.length_penalty", f"{rl.length_penalty!r}; choose from "
              f"{sorted(LENGTH_PENALTIES)} or ''", config_file)
    for key in ("group_size", "max_new_tokens", "num_minibatches", "update_epochs",
                "max_rollout_rounds"):
        if rl[key] < 1:
            _fail(f"{where}.{key}", f"must be >= 1, got {rl[key]}", config_file)
    if rl.eval_size < 0 or rl.overlong_cache_length < 0:
        _fail(where, "eval_size and overlong_cache_length must be >= 0", config_file)
    if rl.overlong_cache_length >= rl.max_new_tokens:
        _fail(f"{where}.overlong_cache_length", f"{rl.overlong_cache_length} must be below "
              f"max_new_tokens={rl.max_new_tokens}", config_file)
    if rl.temperature < 0 or not 0 < rl.top_p <= 1 or rl.top_k < 0:
        _fail(where, "need temperature >= 0, 0 < top_p <= 1, top_k >= 0", config_file)
    if train.seq_len <= rl.max_new_tokens:
        _fail(f"{prefix}.train.seq_len", f"{train.seq_len} leaves no room for a prompt before "
              f"rl.max_new_tokens={rl.max_new_tokens}", config_file)
    if rl.eval_size and not stage.eval_data:
        _fail(f"{where}.eval_size", "needs eval_data (prompts with answers)", config_file)
    if "temperature" in stage.objective:
        _fail(f"{prefix}.objective.temperature", "is taken from rl.temperature in the rl loop",
              config_file)
    rows = train.batch_size * rl.group_size
    if rows % rl.num_minibatches:
        _fail(f"{where}.num_minibatches", f"{rows} rollout rows (batch_size * group_size) do not "
              f"split into {rl.num_minibatches} minibatches", config_file)
    return rows // rl.num_minibatches


def objective_config(stage) -> ml_collections.ConfigDict:
    """The objective's options: registered defaults overridden by the stage's values."""
    registered = OBJECTIVES[stage.objective.name]
    values = dict(registered.defaults)
    values.update({k: v for k, v in stage.objective.items() if k != "name"})
    if stage.loop == "rl" and "temperature" in values:  # score as the sampler drew
        values["temperature"] = float(stage.rl.temperature) or 1.0
    return ml_collections.FrozenConfigDict(values)


def validate_job(config, num_devices: int, config_file: str | None = None) -> None:
    """Raises JobConfigError on the first problem; returns None when the job can run."""
    for key in config.keys():
        if key not in ("tokenizer", "stages"):
            _fail(f"config.{key}", "unknown key; a job has 'tokenizer' and 'stages'", config_file)
    _check_keys(config.tokenizer, tokenizer_config(), "tokenizer", config_file)
    tok = config.tokenizer
    if tok.path and tok.train_on:
        _fail("tokenizer", "set either path or train_on, not both", config_file)
    if not tok.path and not tok.train_on:
        _fail("tokenizer", "set path (an existing tokenizer) or train_on (a corpus)", config_file)
    for field in ("path", "train_on"):
        if tok[field] and not os.path.exists(tok[field]):
            _fail(f"tokenizer.{field}", f"{tok[field]} does not exist", config_file)
    if not config.stages:
        _fail("stages", "the job has no stages", config_file)
    earlier: list[str] = []
    for name in stage_order(config, config_file):
        validate_stage(config.stages[name], name, earlier, num_devices, config_file)
        earlier.append(name)


def stage_order(config, config_file: str | None = None) -> list[str]:
    """Stage names in run order: every stage after the stage it is `init_from`, ties by name.

    Raises JobConfigError when init_from names no stage of the job or the stages form a cycle.
    """
    parents = {name: stage.model.init_from for name, stage in config.stages.items()}
    for name, parent in parents.items():
        if parent and parent not in parents:
            _fail(f"stages.{name}.model.init_from", f"{parent!r} is not a stage of this job "
                  f"(stages: {sorted(parents)})", config_file)
    order: list[str] = []
    pending = sorted(parents)
    while pending:
        ready = [name for name in pending if not parents[name] or parents[name] in order]
        if not ready:
            _fail(f"stages.{pending[0]}.model.init_from", f"stages {pending} start from each "
                  f"other in a cycle", config_file)
        order.append(ready[0])
        pending.remove(ready[0])
    return order
