"""One benchmark run: generate k samples per problem, grade them, record them, summarise.

Batches are fixed chunks of the (limited) problem list, ``batch_size`` prompts each, so a restart
regenerates an unfinished batch with exactly the same inputs, shapes and PRNG key as the first
attempt and writes only its missing (id, sample) lines: a resumed run produces the same samples
as an uninterrupted one.

PRNG: a batch is sampled with ``fold_in(key(seed), stable_hash(id of its first problem))``
(``generate`` then folds in the decode step and the row). With ``--batch_size=1`` that is one
key per problem, ``fold_in(key(seed), stable_hash(problem id))``; batch_size and limit are
generation settings (they decide the chunks), so changing them needs a new output directory.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import jax.numpy as jnp
from absl import logging
from tqdm import tqdm

from evals.common import report, store
from reasonrl.data import prompt_templates
from reasonrl import data as data_lib
from reasonrl import models, parallel, rewards, sampling
from reasonrl.sampling.keys import batch_rng


@dataclasses.dataclass(frozen=True)
class GenerationSettings:
    """Everything that determines the samples (stored in run_config.json, checked on resume)."""

    checkpoint: str
    tokenizer: str
    benchmark: str
    prompt_template: str
    chat_template: str
    num_samples: int
    temperature: float
    top_p: float
    top_k: int
    max_new_tokens: int
    seed: int
    limit: int
    batch_size: int
    dtype: str


@dataclasses.dataclass(frozen=True)
class RuntimeSettings:
    """Settings that do not change the samples (recorded, not compared on resume)."""

    output_dir: str
    mesh_shape: tuple[int, int, int] = (1, -1, 1)
    grader_workers: int | None = None
    grader_timeout_s: float = rewards.DEFAULT_TIMEOUT_S


def select_problems(benchmark: str, limit: int) -> list[rewards.Problem]:
    """The benchmark's first ``limit`` problems (all for limit <= 0), in file order."""
    problems = rewards.load_benchmark(benchmark)
    return problems[:limit] if limit > 0 else problems


class _Model:
    """The checkpoint, tokenizer and stop tokens, loaded once when a batch needs generating."""

    def __init__(self, generation: GenerationSettings, runtime: RuntimeSettings):
        mesh = parallel.make_mesh(runtime.mesh_shape)
        logging.info("loading %s on mesh %s", generation.checkpoint, dict(mesh.shape))
        self.config, self.params = models.load_hf_checkpoint(
            generation.checkpoint, mesh=mesh, dtype=jnp.dtype(generation.dtype))
        self.tokenizer = data_lib.load_tokenizer(generation.tokenizer)
        self.stop_tokens = prompt_templates.stop_token_ids(self.tokenizer, generation.chat_template)

    def complete(self, problems: Sequence[rewards.Problem], generation: GenerationSettings):
        """(texts, GenerationResult) for the batch; row = problem * num_samples + sample."""
        prompt_tokens = [
            prompt_templates.prompt_token_ids(problem.problem, prompt_template=generation.prompt_template,
                                     chat_template=generation.chat_template,
                                     tokenizer=self.tokenizer)
            for problem in problems]
        result = sampling.generate(
            self.config, self.params, prompt_tokens, max_new_tokens=generation.max_new_tokens,
            rng=batch_rng(generation.seed, problems[0].id), temperature=generation.temperature,
            top_p=generation.top_p, top_k=generation.top_k, num_samples=generation.num_samples,
            stop_tokens=self.stop_tokens, pad_id=self.tokenizer.pad_id)
        texts = []
        for tokens, length, reason in zip(result.tokens, result.lengths, result.finish_reasons):
            end = int(length) - (1 if reason == "stop" else 0)  # a final stop token is not text
            texts.append(self.tokenizer.decode([int(token) for token in tokens[:end]]))
        return texts, result


def _batch_records(problems, texts, result, grades, num_samples, done) -> list[dict]:
    """samples.jsonl records of a generated batch, without the (id, sample) pairs in ``done``."""
    records = []
    for row, (text, grade) in enumerate(zip(texts, grades)):
        problem, sample = problems[row // num_samples], row % num_samples
        if (problem.id, sample) in done:
            continue
        records.append({
            "id": problem.id, "sample": sample, "completion": text, "answer": grade.answer,
            "correct": bool(grade.correct), "status": str(grade.status),
            "num_tokens": int(result.lengths[row]),
            "finish_reason": str(result.finish_reasons[row])})
    return records


def run_eval(generation: GenerationSettings, runtime: RuntimeSettings) -> dict:
    """Runs (or resumes) the evaluation into ``runtime.output_dir``; returns the summary."""
    output_dir = Path(runtime.output_dir)
    other = dataclasses.asdict(runtime)
    store.check_or_write_run_config(output_dir, dataclasses.asdict(generation), other)
    problems = select_problems(generation.benchmark, generation.limit)
    samples_path = output_dir / store.SAMPLES_FILE
    done = store.open_samples(samples_path)
    n = generation.num_samples
    batches = [problems[start:start + generation.batch_size]
               for start in range(0, len(problems), generation.batch_size)]
    pending = [batch for batch in batches
               if any((problem.id, sample) not in done for problem in batch
                      for sample in range(n))]
    wanted = {(problem.id, sample) for problem in problems for sample in range(n)}
    logging.info("%s: %d problems x %d samples, %d already done, %d batches to generate",
                 generation.benchmark, len(problems), n, len(done & wanted), len(pending))
    if pending:
        model = _Model(generation, runtime)
        with tqdm(total=len(wanted), initial=len(done & wanted), unit="sample",
                  desc=generation.benchmark) as progress:
            for batch in pending:
                texts, result = model.complete(batch, generation)
                golds = [problem.answer for problem in batch for _ in range(n)]
                grades = rewards.grade_batch(texts, golds, num_workers=runtime.grader_workers,
                                             timeout_s=runtime.grader_timeout_s)
                records = _batch_records(batch, texts, result, grades, n, done)
                store.append_samples(samples_path, records)
                progress.update(len(records))
    summary = report.summarize(generation.benchmark, problems,
                               store.read_samples(samples_path), n)
    report.write_reports(output_dir, summary)
    logging.info("%s pass@1 %.4f; outputs in %s", generation.benchmark, summary["pass@1"],
                 output_dir)
    return summary
