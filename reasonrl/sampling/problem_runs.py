"""Sampling a problem set in fixed batches: what the eval binaries and distillation share (and
the tools that label problems by sampling them).

    model = load_model(checkpoint, tokenizer_path, runtime=runtime, dtype="float32")
    for batch in problem_batches(problems, settings.batch_size):
        completions = complete_problems(*model, batch, settings)
        grades = grade_completions(completions, [p.answer for p in batch], runtime.grader())

* a problem's prompt is ``settings.prompt_template`` rendered with ``settings.chat_template``
  (``reasonrl.data.prompt_templates``); sampling stops at the tokenizer's eos and the chat
  template's end-of-turn tokens.
* a batch is sampled with ``batch_rng(settings.seed, id of its first problem)``
  (:mod:`reasonrl.sampling.keys`), so regenerating a batch (a resumed run) gives its samples again.
* ``settings`` is any object with the :class:`ProblemSampling` attributes: the evals'
  ``GenerationSettings`` and distillation's ``DistillSettings`` both are.
* :class:`RuntimeSettings`: the mesh and the grader pool, which never change a sample.
* :class:`LongPromptWarning`: one warning for a run, at the first prompt that does not fit.
* :func:`shared_grader`: on several processes (hosts) that hold the same completions, each
  grades its share of the rows and every process gets all the grades.

Checked before a run writes anything (so that a corrected rerun is not refused as a different
run), each failure a :class:`SettingsError` naming the flag: :func:`check_sampling` and
:func:`check_at_least_one` (counts and sampling values), :func:`resolve_model_paths` (the
checkpoint and the tokenizer exist and load), :func:`check_context` (``max_new_tokens`` fits the
model's context, read from ``config.json`` without the weights). :func:`checkpoint_digest`
fingerprints the weights, which a run stores to refuse resuming with other weights at the same
path.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from reasonrl import data as data_lib
from reasonrl import models, parallel, rewards
from reasonrl.data import prompt_templates
from reasonrl.errors import ReasonRLError
from reasonrl.parallel.distributed import allgather_objects, process_share
from reasonrl.rewards import Problem
from reasonrl.sampling.completions import (
    PROMPT_TOO_LONG,
    TRUNCATE_PROMPT_CHOICES,
    Completions,
    Grader,
    complete,
)
from reasonrl.sampling.keys import batch_rng
from reasonrl.train import exports
from reasonrl.workdir.fingerprint import files_sha256

# What an unset count means, for the message that rejects an explicit value below 1.
UNSET_MEANS = {"limit": "every problem"}
# Files of a checkpoint directory that checkpoint_digest reads (besides config.json).
WEIGHT_FILES = "*.safetensors"


class SettingsError(ReasonRLError, ValueError):
    """Settings that cannot work: a value out of range, a checkpoint or tokenizer that is not
    there, a max_new_tokens the model cannot hold (the message names the flag)."""


class ProblemSampling(Protocol):
    """The settings :func:`complete_problems` reads (see ``sampling.complete`` for each)."""

    prompt_template: str
    chat_template: str
    num_samples: int
    temperature: float
    top_p: float
    top_k: int
    max_new_tokens: int
    seed: int
    truncate_prompt: str


def check_at_least_one(**counts: int | None) -> None:
    """Raises SettingsError naming the first flag whose value is below 1 (None: unset)."""
    for name, value in counts.items():
        if value is not None and value < 1:
            unset = f" (leave it unset for {UNSET_MEANS[name]})" if name in UNSET_MEANS else ""
            raise SettingsError(f"--{name} must be >= 1{unset}, got {value}")


@dataclasses.dataclass(frozen=True)
class TeacherSampling:
    """The sampling settings of the tools that label or distil problems by sampling a model
    (``reasonrl.synthetic.distill``, ``reasonrl.synthetic.prismatic label``); they extend it.

    Attributes:
        prompt_template, chat_template: how a problem becomes the prompt
            (``reasonrl.data.prompt_templates``).
        num_samples: samples per problem (n).
        temperature, top_p, top_k, max_new_tokens: sampling (see ``sampling.generate``).
        seed: PRNG seed of the sampler.
        batch_size: problems per ``generate`` call (each with ``num_samples`` rows).
        truncate_prompt: "none" (a prompt that does not fit yields no samples) or "left" (it
            keeps its last tokens), see ``reasonrl.sampling.completions``.
    """

    prompt_template: str = "r1"
    chat_template: str = "chatml"
    num_samples: int = 8
    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 0
    max_new_tokens: int = 2048
    seed: int = 0
    batch_size: int = 8
    truncate_prompt: str = "none"

    def __post_init__(self):
        check_sampling(self)
        check_at_least_one(batch_size=self.batch_size)


def check_sampling(settings: ProblemSampling) -> None:
    """Raises SettingsError, naming the flag, for sampling settings that cannot work."""
    check_at_least_one(num_samples=settings.num_samples, max_new_tokens=settings.max_new_tokens)
    if settings.temperature < 0 or settings.top_k < 0 or not 0 < settings.top_p <= 1:
        raise SettingsError(
            f"need --temperature >= 0, --top_k >= 0 and 0 < --top_p <= 1; "
            f"got {settings.temperature}, {settings.top_k}, {settings.top_p}"
        )
    choices = {
        "prompt_template": sorted(prompt_templates.PROMPT_TEMPLATES),
        "chat_template": sorted(data_lib.CHAT_TEMPLATES),
        "truncate_prompt": list(TRUNCATE_PROMPT_CHOICES),
    }
    for flag, known in choices.items():
        if getattr(settings, flag) not in known:
            raise SettingsError(f"--{flag}: unknown {getattr(settings, flag)!r}; known: {known}")


def resolve_model_paths(
    checkpoint: str, tokenizer: str | None, *, checkpoint_flag: str = "--checkpoint"
) -> tuple[str, str]:
    """(checkpoint directory, tokenizer path), absolute, for the command line's values.

    ``checkpoint`` is anything ``reasonrl.train.exports.resolve_checkpoint`` accepts; the
    tokenizer defaults to the checkpoint directory and is loaded once, to check it.

    Raises:
        SettingsError: naming ``checkpoint_flag`` or ``--tokenizer``.
    """
    try:
        directory = exports.resolve_checkpoint(checkpoint).absolute()
    except exports.CheckpointNotFoundError as error:  # its message names --checkpoint
        raise SettingsError(str(error).replace("--checkpoint", checkpoint_flag, 1)) from None
    tokenizer_path = Path(tokenizer).absolute() if tokenizer else directory
    try:
        data_lib.load_tokenizer(str(tokenizer_path))
    except (OSError, ValueError, RuntimeError) as error:  # missing, unknown kind, unreadable
        raise SettingsError(
            f"--tokenizer: cannot load a tokenizer from {str(tokenizer_path)!r}: {error}"
        ) from None
    return str(directory), str(tokenizer_path)


def check_context(checkpoint: str, max_new_tokens: int) -> None:
    """Raises SettingsError unless ``max_new_tokens`` leaves room for a prompt in the model's
    context (``max_position_embeddings`` of the checkpoint's config.json; no weights read)."""
    context = models.read_hf_config(checkpoint).max_position_embeddings
    if max_new_tokens >= context:
        raise SettingsError(
            f"max_new_tokens={max_new_tokens} does not fit the model's context of {context} "
            f"tokens (max_position_embeddings of {checkpoint}), which also holds the prompt; "
            f"lower --max_new_tokens"
        )


def checkpoint_digest(path: str | Path) -> str:
    """sha256 over a checkpoint directory's config.json and *.safetensors files
    (`reasonrl.workdir.fingerprint.files_sha256`: each file's sha256, by name): other weights
    at the same path differ."""
    directory = Path(path)
    return files_sha256([directory / "config.json", *sorted(directory.glob(WEIGHT_FILES))])


@dataclasses.dataclass(frozen=True)
class RuntimeSettings:
    """Settings that do not change the samples or grades (recorded, not compared on resume).

    Attributes:
        mesh_shape: (data, fsdp, tensor) axis sizes of the model's mesh (-1 = fill the devices).
        grader_workers: grader processes (None: the grader's default).
        grader_timeout_s: hard time limit of one answer-equivalence check.
        decode_slots: rows the decode engine samples at once (``sampling.generate``; 0: its
            default).
    """

    mesh_shape: tuple[int, int, int] = (1, -1, 1)
    grader_workers: int | None = None
    grader_timeout_s: float = rewards.DEFAULT_TIMEOUT_S
    decode_slots: int = 0

    def grader(self) -> Grader:
        """``rewards.grade_batch`` with these workers and timeout."""
        return functools.partial(
            rewards.grade_batch, num_workers=self.grader_workers, timeout_s=self.grader_timeout_s
        )


def shared_grader(grader: Grader) -> Grader:
    """``grader`` with its rows split over the processes of a multi-process job.

    Every process calls the returned grader with the same (texts, golds) (a collective); each
    grades its contiguous share of the rows (``reasonrl.parallel.distributed.process_share``)
    and gets every row's grade, in order. With one process it is ``grader`` itself.
    """
    if jax.process_count() == 1:
        return grader

    def grade(texts: Sequence[str], golds: Sequence[str]) -> list[rewards.GradeResult]:
        if len(texts) != len(golds):
            raise ValueError(f"{len(texts)} completions but {len(golds)} gold answers")
        share = process_share(len(texts))
        local = grader(texts[share], golds[share]) if share.stop > share.start else []
        logging.info(
            "grader: process %d of %d graded rows %d:%d (%d of %d)",
            jax.process_index(),
            jax.process_count(),
            share.start,
            share.stop,
            len(local),
            len(texts),
        )
        grades = [grade for part in allgather_objects(list(local)) for grade in part]
        if len(grades) != len(texts):
            raise RuntimeError(
                f"the processes' grades cover {len(grades)} rows, not the {len(texts)} given"
            )
        return grades

    return grade


class LoadedModel(NamedTuple):
    """A checkpoint on its mesh and its tokenizer (unpacks into ``complete_problems``)."""

    config: models.ModelConfig
    params: object
    tokenizer: data_lib.Tokenizer


def load_model(
    checkpoint: str, tokenizer: str, *, runtime: RuntimeSettings, dtype: str = "float32"
) -> LoadedModel:
    """Loads a Hugging Face checkpoint directory on ``runtime.mesh_shape``, and a tokenizer."""
    mesh = parallel.make_mesh(runtime.mesh_shape)
    logging.info("loading %s on mesh %s", checkpoint, dict(mesh.shape))
    config, params = models.load_hf_checkpoint(checkpoint, mesh=mesh, dtype=jnp.dtype(dtype))
    return LoadedModel(config, params, data_lib.load_tokenizer(tokenizer))


def problem_batches(problems: Sequence[Problem], batch_size: int) -> list[list[Problem]]:
    """Fixed consecutive chunks of ``batch_size`` problems (the last may be shorter)."""
    return [
        list(problems[start : start + batch_size]) for start in range(0, len(problems), batch_size)
    ]


def complete_problems(
    config: models.ModelConfig,
    params,
    tokenizer: data_lib.Tokenizer,
    problems: Sequence[Problem],
    settings: ProblemSampling,
    *,
    decode_slots: int = 0,
) -> Completions:
    """``settings.num_samples`` completions of each problem (row = problem * n + sample);
    ``decode_slots``: the decode engine's (0: its default; the samples do not depend on it)."""
    prompt_ids = [
        prompt_templates.prompt_token_ids(
            problem.problem,
            prompt_template=settings.prompt_template,
            chat_template=settings.chat_template,
            tokenizer=tokenizer,
        )
        for problem in problems
    ]
    return complete(
        config,
        params,
        tokenizer,
        prompt_ids,
        max_new_tokens=settings.max_new_tokens,
        rng=batch_rng(settings.seed, problems[0].id),
        temperature=settings.temperature,
        top_p=settings.top_p,
        top_k=settings.top_k,
        num_samples=settings.num_samples,
        stop_tokens=prompt_templates.stop_token_ids(tokenizer, settings.chat_template),
        pad_id=tokenizer.pad_id,
        truncate_prompt=settings.truncate_prompt,
        decode_slots=decode_slots or None,
    )


class LongPromptWarning:
    """Logs one warning per run, at the first batch with a prompt that does not fit (the run's
    summary counts them all)."""

    def __init__(self, remedy: str):
        """``remedy``: what the user can do instead, e.g. "rerun with --truncate_prompt=left"."""
        self.remedy = remedy
        self.warned = False

    def observe(self, problems: Sequence[Problem], completions: Completions) -> None:
        """Warns, unless it did before, when a prompt of this batch did not fit."""
        too_long = completions.by_prompt(completions.prompt_too_long)
        if self.warned or not too_long.any():
            return
        self.warned = True
        first = int(np.argmax(too_long))
        logging.warning(
            "problem %r: its prompt has %d tokens, more than the %d that leave room for "
            "max_new_tokens within the model's context (max_position_embeddings); it and every "
            "other such problem is not sampled and is counted as %r in the summary; %s. This "
            "warning is not repeated for the run.",
            problems[first].id,
            completions.prompts[first].size,
            completions.prompt_budget,
            PROMPT_TOO_LONG,
            self.remedy,
        )
