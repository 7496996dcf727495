"""One diversity run: k samples per open-ended prompt, recorded resumably, then measured.

Sampling is the math evals' path (``reasonrl.sampling.problem_runs``: a prompt is a ``Problem``
without an answer, rendered with ``--prompt_template`` and ``--chat_template``, batches of
``--batch_size`` prompts keyed by their first prompt's id), and so is the record:
``samples.jsonl`` (one line per (id, sample): ``id``, ``sample``, ``completion``,
``num_tokens``, ``finish_reason``, with ``--truncate_prompt=left`` ``prompt_truncated``, with
``--reward_model`` the raw ``reward``), ``run_config.json`` (the generation settings, the
weights' digests; a restart with others is refused), the output directory's lock, over-long
prompts recorded as ``prompt_too_long`` and left out of every metric.

Settings that only change the measurement (equivalence test, thresholds, patience, encoder,
``--compare_to``) are recorded but not compared: rerunning with another one re-measures the
stored samples without sampling again. ``--compare_to`` a checkpoint samples it with the same
generation settings into ``<output_dir>/compare/`` (its own run_config.json and samples.jsonl);
a samples file (or a directory holding one) of another run is read as it is.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from absl import logging
from tqdm import tqdm

from evals.common import diversity_report, store
from evals.common.diversity_quality import RewardModelScorer
from evals.common.runner import GenerationSettings
from reasonrl import diversity, models, rewards
from reasonrl.diversity.novelty import NOVELTYBENCH_REWARD_THRESHOLDS, PATIENCE
from reasonrl.sampling import problem_runs
from reasonrl.sampling.completions import Completions
from reasonrl.workdir import DirectoryLock

SAMPLE_FIELDS = ("id", "sample", "completion", "num_tokens", "finish_reason")
COMPARE_DIR = "compare"
LONG_PROMPT_REMEDY = "rerun into a new --output_dir with --truncate_prompt=left to sample them"


@dataclasses.dataclass(frozen=True)
class DiversitySettings(GenerationSettings):
    """Everything that determines the samples (stored in run_config.json, checked on resume):
    the math evals' `GenerationSettings` (``benchmark``: a vendored prompt set or a JSONL path)
    plus ``reward_model``, a reward-model export whose raw score of each sample is recorded, or
    None."""

    reward_model: str | None = None


@dataclasses.dataclass(frozen=True)
class MeasureSettings:
    """How the samples are measured (recorded in run_config.json, free to change on resume).

    Attributes:
        equivalence: a name of ``reasonrl.diversity.EQUIVALENCE_TESTS``.
        equivalence_threshold: that test's threshold (None: its documented default).
        patience: NoveltyBench's p.
        reward_thresholds: 9 increasing raw rewards that bucket a reward into u = 1..10.
        encoder: a Hugging Face BERT directory; None: all-MiniLM-L6-v2 from the diversity extra.
        encoder_batch_size: texts per encoder call.
        compare_to: a checkpoint, a samples.jsonl or a directory holding one (or None).
    """

    equivalence: str = "rouge1"
    equivalence_threshold: float | None = None
    patience: float = PATIENCE
    reward_thresholds: tuple[float, ...] = NOVELTYBENCH_REWARD_THRESHOLDS
    encoder: str | None = None
    encoder_batch_size: int = 64
    compare_to: str | None = None

    def __post_init__(self):
        if self.equivalence not in diversity.EQUIVALENCE_TESTS:
            raise problem_runs.SettingsError(
                f"--equivalence {self.equivalence!r}; known: {sorted(diversity.EQUIVALENCE_TESTS)}"
            )
        if not 0 < self.patience <= 1:
            raise problem_runs.SettingsError(f"--patience must be in (0, 1], got {self.patience}")
        try:
            diversity.quality_buckets([], self.reward_thresholds)
        except ValueError as error:
            raise problem_runs.SettingsError(f"--reward_thresholds: {error}") from None
        problem_runs.check_at_least_one(encoder_batch_size=self.encoder_batch_size)


def select_prompts(benchmark: str, limit: int | None) -> list[diversity.DiversityPrompt]:
    """The set's first ``limit`` prompts (all for None), in file order."""
    return diversity.load_prompts(benchmark)[:limit]


def _batch_records(batch, completions: Completions, rewards_, done, settings) -> list[dict]:
    """samples.jsonl records of a generated batch, without the (id, sample) pairs in ``done``."""
    n, records = completions.num_samples, []
    for row, text in enumerate(completions.texts):
        prompt, sample = batch[row // n], row % n
        if (prompt.id, sample) in done:
            continue
        record = {
            "id": prompt.id,
            "sample": sample,
            "completion": text,
            "num_tokens": int(completions.lengths[row]),
            "finish_reason": str(completions.finish_reasons[row]),
        }
        if settings.truncate_prompt == "left":
            record["prompt_truncated"] = bool(completions.prompt_truncated[row])
        if rewards_ is not None:
            sampled = not completions.prompt_too_long[row]
            record["reward"] = float(rewards_[row]) if sampled else None
        records.append(record)
    return records


def _score(scorer, batch, completions: Completions):
    """Raw rewards [N] of a batch's rows (0 where the prompt was not sampled), or None."""
    if scorer is None:
        return None
    n = completions.num_samples
    prompts = [batch[row // n].prompt for row in range(len(completions.texts))]
    return scorer(prompts, completions.texts)


def sample_into(settings, runtime, prompts, output_dir: Path, other: dict) -> list[dict]:
    """Writes or checks ``run_config.json`` (``other``: recorded, not compared), samples what
    ``samples.jsonl`` lacks; returns the records. The caller holds the directory's lock."""
    stored = {
        **dataclasses.asdict(settings),
        "checkpoint_sha256": problem_runs.checkpoint_digest(settings.checkpoint),
    }
    if settings.reward_model:
        stored["reward_model_sha256"] = problem_runs.checkpoint_digest(settings.reward_model)
    store.check_or_write_run_config(output_dir, stored, {"output_dir": str(output_dir), **other})
    path = output_dir / store.SAMPLES_FILE
    done = store.open_samples(path, SAMPLE_FIELDS)
    n = settings.num_samples
    problems = [rewards.Problem(id=p.id, problem=p.prompt, answer="") for p in prompts]
    pending = [
        batch
        for batch in problem_runs.problem_batches(problems, settings.batch_size)
        if any((problem.id, sample) not in done for problem in batch for sample in range(n))
    ]
    if pending:
        model = problem_runs.load_model(
            settings.checkpoint, settings.tokenizer, runtime=runtime, dtype=settings.dtype
        )
        scorer = (
            RewardModelScorer(settings.reward_model, settings.chat_template)
            if settings.reward_model
            else None
        )
        long_prompts = problem_runs.LongPromptWarning(LONG_PROMPT_REMEDY)
        wanted = {(problem.id, sample) for problem in problems for sample in range(n)}
        with tqdm(total=len(wanted), initial=len(done & wanted), unit="sample") as progress:
            for batch in pending:
                completions = problem_runs.complete_problems(
                    *model, batch, settings, decode_slots=runtime.decode_slots
                )
                long_prompts.observe(batch, completions)
                scores = _score(scorer, batch, completions)
                records = _batch_records(batch, completions, scores, done, settings)
                store.append_samples(path, records)
                progress.update(len(records))
    return store.read_samples(path, SAMPLE_FIELDS)


def _compare_records(measure, settings, runtime, prompts, output_dir: Path) -> list[dict] | None:
    """The other run's records for --compare_to (sampling a checkpoint first), or None."""
    if not measure.compare_to:
        return None
    source = Path(measure.compare_to)
    for candidate in (source, source / store.SAMPLES_FILE):
        if candidate.is_file():
            return store.read_samples(candidate, SAMPLE_FIELDS)
    checkpoint, tokenizer = problem_runs.resolve_model_paths(
        measure.compare_to, None, checkpoint_flag="--compare_to"
    )
    other = dataclasses.replace(settings, checkpoint=checkpoint, tokenizer=tokenizer)
    problem_runs.check_context(checkpoint, other.max_new_tokens)
    recorded = {"compared_with": str(output_dir), **dataclasses.asdict(runtime)}
    return sample_into(other, runtime, prompts, output_dir / COMPARE_DIR, recorded)


def run_diversity_eval(settings, measure, runtime, output_dir) -> dict:
    """Runs (or resumes) the eval into ``output_dir``; returns the summary.

    Raises:
        problem_runs.SettingsError: a setting that cannot work (nothing written).
        reasonrl.workdir.DirectoryLockedError, run_store.ConfigMismatchError,
        store.OutputFileError: as the math evals.
    """
    output_dir = Path(output_dir)
    prompts = select_prompts(settings.benchmark, settings.limit)
    problem_runs.check_context(settings.checkpoint, settings.max_new_tokens)
    timing = {}
    with DirectoryLock(output_dir, purpose="the eval"):
        start = time.perf_counter()
        recorded = {**dataclasses.asdict(measure), **dataclasses.asdict(runtime)}
        records = sample_into(settings, runtime, prompts, output_dir, recorded)
        other = _compare_records(measure, settings, runtime, prompts, output_dir)
        timing["sampling_s"] = time.perf_counter() - start
        start = time.perf_counter()
        encoder = models.SentenceEncoder.from_directory(measure.encoder)
        summary, per_prompt = diversity_report.summarize(
            settings, measure, prompts, records, other, encoder
        )
        timing["measuring_s"] = time.perf_counter() - start
        summary["timing"] = timing
        diversity_report.write_reports(output_dir, summary, per_prompt)
    logging.info(
        "%s distinct_k %.3f, similarity %.3f; outputs in %s",
        summary["benchmark"],
        summary["distinct_k"],
        summary["hivemind_mean_similarity"],
        output_dir,
    )
    return summary
