"""The checks of a job that need its tokenizer, run for every stage before the first one trains.

`validate_job` (reasonrl.train.config) checks the config itself, before the tokenizer exists.
`check_job_inputs` then checks what a stage would otherwise find out only when it starts, after
the stages before it have trained for hours:

  data         every stage's `data` and `eval_data` spec builds (its files exist and are not
               empty) and its first record becomes what the stage's loop feeds its objective:
               a document or a pair for the supervised loop, a prompt with its gold answer
               (`rl.prompt_field` / `rl.answer_field`) for the rl loop;
  vocabulary   every id of the tokenizer, its special ids included, is a row of the model's
               embedding: a preset's (with its overrides), a Hugging Face checkpoint's
               (`config.json`), or for `model.init_from` the parent stage's.

Every problem is a JobConfigError naming the dotted field (`stages.<name>.data.source.path`,
`stages.<name>.data: <path>:<line>: record has no field ...`) and the config file. The records
after the first are checked as the pipeline reads them (reasonrl.data.pipeline.LocatedTask).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reasonrl.data.sources.base import MalformedRecordError
from reasonrl.data.tokenizer.base import Tokenizer
from reasonrl.errors import ReasonRLError
from reasonrl.models.config import ConfigError
from reasonrl.models.hf_checkpoint import CONFIG_FILE, read_hf_config
from reasonrl.models.presets import get_preset
from reasonrl.objectives.registry import OBJECTIVES
from reasonrl.train.config import fail, job_error, stage_order
from reasonrl.train.loops import StageLoop, get_loop

# (spec, where) -> None: builds a data spec as a stage's loop reads it and tries its first
# record, naming fields under `where`.
DataCheck = Callable[[Any, str], None]


def _data_check(stage, loop: StageLoop, tokenizer: Tokenizer, prefix: str) -> DataCheck | None:
    """How the stage's loop reads its data specs (`StageLoop.check_data`); None when the loop
    registered no check."""
    if loop.check_data is None:
        return None
    return lambda spec, where: loop.check_data(stage, spec, tokenizer, where, prefix)


def check_job_inputs(config, tokenizer: Tokenizer, *, config_file: str | None = None) -> None:
    """Checks every stage's data and model vocabulary against `tokenizer`; see the module doc.

    Call it after `validate_job(config, ...)` and after the tokenizer is loaded (or trained),
    before the first stage runs.

    Raises:
      JobConfigError: naming the dotted field (and `config_file`) of the first problem.
    """
    vocab_sizes: dict[str, int] = {}
    for name in stage_order(config, config_file):
        stage, prefix = config.stages[name], f"stages.{name}"
        vocab_sizes[name] = _check_vocabulary(stage, prefix, tokenizer, vocab_sizes, config_file)
        check = _data_check(
            stage, get_loop(OBJECTIVES[stage.objective.name].loop), tokenizer, prefix
        )
        for section in ("data", "eval_data"):
            if check is not None and stage[section]:
                _check_data(check, stage[section], f"{prefix}.{section}", config_file)


def _check_data(check: DataCheck, spec, where: str, config_file: str | None) -> None:
    try:
        check(spec, where)
    except MalformedRecordError as error:  # "path:line: ..." of a record
        fail(where, str(error), config_file)
    except ReasonRLError as error:  # a SpecError...: the message starts with the field
        raise job_error(str(error), config_file) from error


def _model_vocab_size(
    stage, prefix: str, tokenizer: Tokenizer, vocab_sizes: dict[str, int], config_file: str | None
) -> tuple[int, str, str]:
    """(vocab_size, the field that decides it, where it comes from) of the stage's model, as
    reasonrl.train.engine.load_model builds it."""
    model = stage.model
    if model.init_from:
        return (
            vocab_sizes[model.init_from],
            f"{prefix}.model.init_from",
            f"stage {model.init_from!r}",
        )
    if model.hf_checkpoint:
        field = f"{prefix}.model.hf_checkpoint"
        try:
            vocab_size = read_hf_config(model.hf_checkpoint).vocab_size
        except (ReasonRLError, OSError) as error:
            fail(field, str(error), config_file)
        return vocab_size, field, f"{model.hf_checkpoint}/{CONFIG_FILE}"
    overrides = model.overrides.to_dict()
    if model.vocab_from_tokenizer:
        overrides.setdefault("vocab_size", tokenizer.vocab_size)
    try:
        vocab_size = get_preset(model.preset, **overrides).vocab_size
    except ConfigError as error:
        fail(f"{prefix}.model.overrides", str(error), config_file)
    return vocab_size, f"{prefix}.model", f"preset {model.preset!r} with its overrides"


def _check_vocabulary(
    stage, prefix: str, tokenizer: Tokenizer, vocab_sizes: dict[str, int], config_file: str | None
) -> int:
    """The stage model's vocabulary size, after checking that every tokenizer id fits it."""
    vocab_size, field, source = _model_vocab_size(
        stage, prefix, tokenizer, vocab_sizes, config_file
    )
    special = {"bos": tokenizer.bos_id, "eos": tokenizer.eos_id, "pad": tokenizer.pad_id}
    beyond = [
        f"{role}={token_id}"
        for role, token_id in special.items()
        if token_id is not None and token_id >= vocab_size
    ]
    if tokenizer.vocab_size > vocab_size or beyond:
        note = f" (special ids beyond the model's: {', '.join(beyond)})" if beyond else ""
        fail(
            field,
            f"the tokenizer has {tokenizer.vocab_size} ids{note} but the model's "
            f"vocab_size is {vocab_size} ({source})",
            config_file,
        )
    return vocab_size
