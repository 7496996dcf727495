"""One benchmark run: generate k samples per problem, grade them, record them, summarise.

Prompts, sampling, decoding and grading go through :mod:`reasonrl.sampling.problem_runs`, the
path distillation shares (and RL rollouts below it).

Batches are fixed chunks of the (limited) problem list, ``batch_size`` prompts each, so a restart
regenerates an unfinished batch with exactly the same inputs, shapes and PRNG key as the first
attempt and writes only its missing (id, sample) lines: a resumed run produces the same samples
as an uninterrupted one.

PRNG: a batch is sampled with ``fold_in(key(seed), stable_hash(id of its first problem))``
(``generate`` then folds in the decode step and the row). With ``--batch_size=1`` that is one
key per problem, ``fold_in(key(seed), stable_hash(problem id))``; batch_size and limit are
generation settings (they decide the chunks), so changing them needs a new output directory.

Prompts that do not fit (prompt + max_new_tokens > the model's max_position_embeddings): with
``--truncate_prompt=none`` (default) the problem is not sampled; its n samples are recorded with
status and finish_reason ``prompt_too_long``, completion "", num_tokens 0 and correct false
(pass@k counts them wrong), the summary counts them, and the run logs one warning. With
``--truncate_prompt=left`` the prompt keeps its last max_position_embeddings - max_new_tokens
tokens and every record of the run says whether its prompt was cut (``prompt_truncated``).

Before anything is written the settings are checked (``GenerationSettings`` rejects a count
below 1; ``max_new_tokens`` must leave room for a prompt in the model's context), so a failed
start never blocks its corrected rerun. The run then holds ``--output_dir``'s lock
(``reasonrl.workdir.DirectoryLock``): a second eval on the same directory refuses at start,
naming the holder. ``run_config.json`` records the checkpoint's weights by digest
(``checkpoint_sha256``, :func:`reasonrl.sampling.problem_runs.checkpoint_digest`), so other
weights at the same path are refused on resume; a run_config.json written before the digest
was recorded resumes with a warning.

Several processes (hosts, ``reasonrl.parallel.initialize_distributed``) run one eval: each
loads the model onto the global mesh and takes part in every batch's sampling (one program over
all devices), then grades its share of the batch's rows
(:func:`reasonrl.sampling.problem_runs.shared_grader`). Process 0 alone touches
``--output_dir``: it holds the lock, checks or writes ``run_config.json``, reads what is done,
appends each batch's records and writes the summary; what it read (and any error it raised)
reaches the other processes (``reasonrl.parallel.distributed.on_main_process``), so every
process generates the same batches and no process waits for one that failed. The output is the
one a single process writes: one ``samples.jsonl``, each (id, sample) once.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

from absl import logging
from tqdm import tqdm

from evals.common import report, store
from reasonrl import rewards
from reasonrl.parallel.distributed import is_main_process, on_main_process
from reasonrl.sampling import problem_runs
from reasonrl.sampling.completions import Completions, grade_completions
from reasonrl.sampling.problem_runs import RuntimeSettings
from reasonrl.workdir import DirectoryLock

LONG_PROMPT_REMEDY = (
    "to sample them with the end of their prompt instead, rerun into a new "
    "--output_dir with --truncate_prompt=left"
)


@dataclasses.dataclass(frozen=True)
class GenerationSettings:
    """Everything that determines the samples (stored in run_config.json, checked on resume).

    ``limit``: the first N problems, None for all. Raises ``problem_runs.SettingsError`` (naming
    the flag) for values that cannot work.
    """

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
    limit: int | None
    batch_size: int
    dtype: str
    truncate_prompt: str = "none"

    def __post_init__(self):
        problem_runs.check_sampling(self)
        problem_runs.check_at_least_one(limit=self.limit, batch_size=self.batch_size)


def select_problems(benchmark: str, limit: int | None) -> list[rewards.Problem]:
    """The benchmark's first ``limit`` problems (all for None), in file order."""
    return rewards.load_benchmark(benchmark)[:limit]


def _batch_records(
    problems, completions: Completions, grades, done, generation: GenerationSettings
) -> list[dict]:
    """samples.jsonl records of a generated batch, without the (id, sample) pairs in ``done``."""
    n = completions.num_samples
    records = []
    for row, (text, grade) in enumerate(zip(completions.texts, grades)):
        problem, sample = problems[row // n], row % n
        if (problem.id, sample) in done:
            continue
        record = {
            "id": problem.id,
            "sample": sample,
            "completion": text,
            "answer": grade.answer,
            "correct": bool(grade.correct),
            "status": str(grade.status),
            "num_tokens": int(completions.lengths[row]),
            "finish_reason": str(completions.finish_reasons[row]),
        }
        if generation.truncate_prompt == "left":
            record["prompt_truncated"] = bool(completions.prompt_truncated[row])
        records.append(record)
    return records


def run_eval(generation: GenerationSettings, runtime: RuntimeSettings, output_dir: str) -> dict:
    """Runs (or resumes) the evaluation into ``output_dir``; returns the summary.

    Raises:
        problem_runs.SettingsError: ``max_new_tokens`` does not fit the model (nothing written).
        reasonrl.workdir.DirectoryLockedError: another run holds ``output_dir``.
        run_store.ConfigMismatchError: ``output_dir`` holds a run with other settings or weights.
        store.OutputFileError: a line of ``samples.jsonl`` is not a sample record.
    """
    output_dir = Path(output_dir)
    problems = select_problems(generation.benchmark, generation.limit)
    problem_runs.check_context(generation.checkpoint, generation.max_new_tokens)
    samples_path = output_dir / store.SAMPLES_FILE
    with contextlib.ExitStack() as stack:

        def start() -> set[tuple[str, int]]:
            """Process 0: the lock, run_config.json, the (id, sample) pairs already done."""
            stack.enter_context(DirectoryLock(output_dir, purpose="the eval"))
            stored = {
                **dataclasses.asdict(generation),
                "checkpoint_sha256": problem_runs.checkpoint_digest(generation.checkpoint),
            }
            store.check_or_write_run_config(
                output_dir, stored, {"output_dir": str(output_dir), **dataclasses.asdict(runtime)}
            )
            return store.open_samples(samples_path)

        def finish() -> dict:
            """Process 0: the summary of samples.jsonl, written with the reports."""
            summary = report.summarize(
                generation.benchmark,
                problems,
                store.read_samples(samples_path),
                generation.num_samples,
            )
            report.write_reports(output_dir, summary)
            return summary

        done = on_main_process(start)
        _sample_missing(generation, runtime, problems, samples_path, done)
        summary = on_main_process(finish)
    logging.info(
        "%s pass@1 %.4f; outputs in %s", generation.benchmark, summary["pass@1"], output_dir
    )
    return summary


def _sample_missing(
    generation: GenerationSettings,
    runtime: RuntimeSettings,
    problems: list[rewards.Problem],
    samples_path: Path,
    done: set[tuple[str, int]],
) -> None:
    """Generates, grades and appends the (id, sample) records ``samples_path`` lacks (``done``:
    the pairs it holds). Every process runs it; process 0 alone appends."""
    n = generation.num_samples
    pending = [
        batch
        for batch in problem_runs.problem_batches(problems, generation.batch_size)
        if any((problem.id, sample) not in done for problem in batch for sample in range(n))
    ]
    wanted = {(problem.id, sample) for problem in problems for sample in range(n)}
    logging.info(
        "%s: %d problems x %d samples, %d already done, %d batches to generate",
        generation.benchmark,
        len(problems),
        n,
        len(done & wanted),
        len(pending),
    )
    if not pending:
        return
    model = problem_runs.load_model(
        generation.checkpoint, generation.tokenizer, runtime=runtime, dtype=generation.dtype
    )
    grader = problem_runs.shared_grader(runtime.grader())
    long_prompts = problem_runs.LongPromptWarning(LONG_PROMPT_REMEDY)
    with tqdm(
        total=len(wanted),
        initial=len(done & wanted),
        unit="sample",
        desc=generation.benchmark,
        disable=not is_main_process(),
    ) as progress:
        for batch in pending:
            completions = problem_runs.complete_problems(
                *model, batch, generation, decode_slots=runtime.decode_slots
            )
            long_prompts.observe(batch, completions)
            grades = grade_completions(completions, [problem.answer for problem in batch], grader)
            records = _batch_records(batch, completions, grades, done, generation)
            on_main_process(lambda: store.append_samples(samples_path, records))  # noqa: B023
            progress.update(len(records))
