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
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import jax.numpy as jnp
import numpy as np
from absl import logging

from reasonrl import data as data_lib
from reasonrl import models, parallel, rewards
from reasonrl.data import prompt_templates
from reasonrl.rewards import Problem
from reasonrl.sampling.completions import PROMPT_TOO_LONG, Completions, Grader, complete
from reasonrl.sampling.keys import batch_rng


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


@dataclasses.dataclass(frozen=True)
class RuntimeSettings:
    """Settings that do not change the samples or grades (recorded, not compared on resume).

    Attributes:
        mesh_shape: (data, fsdp, tensor) axis sizes of the model's mesh (-1 = fill the devices).
        grader_workers: grader processes (None: the grader's default).
        grader_timeout_s: hard time limit of one answer-equivalence check.
    """

    mesh_shape: tuple[int, int, int] = (1, -1, 1)
    grader_workers: int | None = None
    grader_timeout_s: float = rewards.DEFAULT_TIMEOUT_S

    def grader(self) -> Grader:
        """``rewards.grade_batch`` with these workers and timeout."""
        return functools.partial(rewards.grade_batch, num_workers=self.grader_workers,
                                 timeout_s=self.grader_timeout_s)


class LoadedModel(NamedTuple):
    """A checkpoint on its mesh and its tokenizer (unpacks into ``complete_problems``)."""

    config: models.ModelConfig
    params: object
    tokenizer: data_lib.Tokenizer


def load_model(checkpoint: str, tokenizer: str, *, runtime: RuntimeSettings,
               dtype: str = "float32") -> LoadedModel:
    """Loads a Hugging Face checkpoint directory on ``runtime.mesh_shape``, and a tokenizer."""
    mesh = parallel.make_mesh(runtime.mesh_shape)
    logging.info("loading %s on mesh %s", checkpoint, dict(mesh.shape))
    config, params = models.load_hf_checkpoint(checkpoint, mesh=mesh, dtype=jnp.dtype(dtype))
    return LoadedModel(config, params, data_lib.load_tokenizer(tokenizer))


def problem_batches(problems: Sequence[Problem], batch_size: int) -> list[list[Problem]]:
    """Fixed consecutive chunks of ``batch_size`` problems (the last may be shorter)."""
    return [list(problems[start:start + batch_size])
            for start in range(0, len(problems), batch_size)]


def complete_problems(config: models.ModelConfig, params, tokenizer: data_lib.Tokenizer,
                      problems: Sequence[Problem], settings: ProblemSampling) -> Completions:
    """``settings.num_samples`` completions of each problem (row = problem * n + sample)."""
    prompt_ids = [prompt_templates.prompt_token_ids(
        problem.problem, prompt_template=settings.prompt_template,
        chat_template=settings.chat_template, tokenizer=tokenizer) for problem in problems]
    return complete(
        config, params, tokenizer, prompt_ids, max_new_tokens=settings.max_new_tokens,
        rng=batch_rng(settings.seed, problems[0].id), temperature=settings.temperature,
        top_p=settings.top_p, top_k=settings.top_k, num_samples=settings.num_samples,
        stop_tokens=prompt_templates.stop_token_ids(tokenizer, settings.chat_template),
        pad_id=tokenizer.pad_id, truncate_prompt=settings.truncate_prompt)


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
            problems[first].id, completions.prompts[first].size, completions.prompt_budget,
            PROMPT_TOO_LONG, self.remedy)
