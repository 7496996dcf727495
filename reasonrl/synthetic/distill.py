r"""Distillation data: sample a teacher's solutions, keep the graded-correct ones, write SFT JSONL.

    python -m reasonrl.synthetic.distill --teacher=runs/r1 --problems=train.jsonl \
        --output=distill.jsonl --num_samples=8 [--select=all|shortest|longest|scorer:pkg.mod:fn]

For every problem the teacher (any checkpoint ``reasonrl.train.exports.resolve_checkpoint``
accepts) draws ``num_samples`` completions that share one prefill; ``reasonrl.rewards.grade_batch``
grades them against the gold answer (math-verify in worker processes with a timeout: model output
is parsed, never executed); the correct ones, minus truncated ones unless
``--nodrop_truncated``, go through the ``--select`` strategy (:mod:`reasonrl.synthetic.selection`)
and each kept sample becomes one line of ``--output``:

    {"question": <user turn>, "answer": <assistant turn>,     # --prompt_field, --response_field
     "id": <problem id>, "sample": <index>, "num_tokens": <n>, "extracted_answer": <answer>}

which the engine's ``sft`` task reads with ``{"type": "sft", "prompt_field": "question",
"response_field": "answer", "chat_template": <--chat_template>}`` (it reads only those two fields;
the provenance fields are ignored). Choices:

* the user turn is the prompt template's user message (for ``r1``: the problem plus the boxed
  instruction), i.e. what the student is prompted with when it is evaluated the same way; a
  template's system message (``qwen_math``) is reported in the summary as ``sft_system_prompt``,
  for the sft spec's ``system_prompt``.
* the assistant turn is the template's assistant prefix (``"<think>\n"`` for ``r1``) followed by
  the completion: the teacher's prompt ended with the prefix, so the student must learn to produce
  it. The grader and scorers see the completion alone, as in the evals.
* ``num_tokens`` counts generated tokens, a final stop token included (as the evals do).
* samples that hit ``--max_new_tokens`` are dropped by default even when graded correct: the sft
  task closes every response with the end-of-turn token, which would teach the student to stop
  mid-reasoning.
* the grader gets the gold answer as given (``--answer_field``): it must be the final answer
  alone, not a worked solution (GSM8K's ``answer`` ends in ``#### 18`` and needs converting).
* a problem whose prompt leaves no room for ``--max_new_tokens`` within the teacher's context
  yields no samples (one warning per run; the summary counts it as
  ``prompt_too_long_problems``), unless ``--truncate_prompt=left``: then the teacher sees the
  prompt's last tokens and the problem's records carry ``"prompt_truncated": true`` (every record
  of such a run has the field; the sft task ignores it).

Sampling, decoding and grading go through :mod:`reasonrl.sampling.problem_runs`, the path the
eval binaries use. Determinism and resumption follow them: problems are cut into fixed batches of
``--batch_size``, a batch is sampled with ``fold_in(key(seed), stable_hash(id of its first
problem))``, and :mod:`reasonrl.synthetic.distill_store` keeps a sidecar state
(``OUT.jsonl.state.jsonl``: the settings, then one line per finished batch) so a rerun skips
finished batches and ends byte-identical to an uninterrupted run. Rerunning with other settings
on an existing output is refused; so is other teacher weights at the same path (the state records
``checkpoint_sha256``, see ``problem_runs.checkpoint_digest``; a state written before it was
recorded resumes with a warning). The flags are checked before anything is written (a count
below 1, a ``--max_new_tokens`` beyond the teacher's context, a missing teacher or tokenizer).
A run holds the lock ``.OUT.jsonl.lock`` beside its output (``reasonrl.workdir.DirectoryLock``):
a second run on the same ``--output`` refuses at start, naming the holder. The summary
(problems, samples, correct fraction, kept records, mean kept length, problems whose prompt did
not fit or was cut) is printed and written atomically to ``OUT.jsonl.summary.json``.

From Python: :func:`distill` (records) or :func:`distill_batches` (records with every graded
sample), on a loaded model; :func:`run_distill` is the resumable file writer the CLI calls.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from absl import flags, logging

import reasonrl.cli
from reasonrl import data as data_lib
from reasonrl import models, rewards
from reasonrl.data import prompt_templates
from reasonrl.errors import ReasonRLError
from reasonrl.rewards import Problem
from reasonrl.sampling.completions import (
    TRUNCATE_PROMPT_CHOICES,
    Completions,
    Grader,
    grade_completions,
)
from reasonrl.sampling.problem_runs import (
    LongPromptWarning,
    RuntimeSettings,
    SettingsError,
    TeacherSampling,
    check_at_least_one,
    check_context,
    checkpoint_digest,
    complete_problems,
    load_model,
    problem_batches,
    resolve_model_paths,
)
from reasonrl.synthetic import distill_store
from reasonrl.synthetic.selection import Candidate, make_selector
from reasonrl.workdir import DirectoryLock

# Fields every record carries besides the prompt and response (the sft task ignores them).
PROVENANCE_FIELDS = ("id", "sample", "num_tokens", "extracted_answer")
# Carried by every record of a --truncate_prompt=left run.
TRUNCATION_FIELD = "prompt_truncated"
LONG_PROMPT_REMEDY = (
    "to sample them with the end of their prompt instead, rerun with "
    "--truncate_prompt=left and another --output"
)


class ProblemFileError(ReasonRLError, ValueError):
    """A problems file that is missing or has a bad line (the message names file:line)."""


# Settings that cannot work raise ``problem_runs.SettingsError`` (imported here), naming the flag.


@dataclasses.dataclass(frozen=True)
class DistillSettings(TeacherSampling):
    """Everything that decides the records, given the teacher and the problems: the sampling
    settings (``problem_runs.TeacherSampling``; the chat template is also the one to train
    with), and

    Attributes:
        select: selection strategy, see :mod:`reasonrl.synthetic.selection`.
        keep_per_problem: samples a ranking strategy keeps per problem.
        drop_truncated: discard samples that hit ``max_new_tokens`` even when graded correct.
        prompt_field, response_field: output field names of the user and assistant turns.
    """

    select: str = "all"
    keep_per_problem: int = 1
    drop_truncated: bool = True
    prompt_field: str = "question"
    response_field: str = "answer"

    def __post_init__(self):
        super().__post_init__()
        check_at_least_one(keep_per_problem=self.keep_per_problem)
        fields = (self.prompt_field, self.response_field)
        reserved = PROVENANCE_FIELDS + (TRUNCATION_FIELD,)
        if not all(fields) or len(set(fields)) != 2 or set(fields) & set(reserved):
            raise SettingsError(
                f"--prompt_field and --response_field must be two different "
                f"non-empty names, not among {list(reserved)}; got "
                f"{self.prompt_field!r}, {self.response_field!r}"
            )
        make_selector(self.select)  # raises SelectionError on a bad --select


@dataclasses.dataclass(frozen=True)
class BatchOutcome:
    """One batch of problems, distilled.

    Attributes:
        index: the batch's position in the run (problems[index * batch_size:...]).
        problems: its problems.
        candidates: every graded sample, by problem then sample index (none for a problem
            whose prompt did not fit).
        records: the SFT records kept, by problem then sample index.
        prompt_too_long: ids of the problems whose prompt did not fit (not sampled).
        prompt_truncated: ids of the problems whose prompt was cut (``truncate_prompt="left"``).
    """

    index: int
    problems: list[Problem]
    candidates: list[Candidate]
    records: list[dict]
    prompt_too_long: list[str] = dataclasses.field(default_factory=list)
    prompt_truncated: list[str] = dataclasses.field(default_factory=list)

    def counts(self) -> dict:
        """The per-batch counts the state file and summary use."""
        kept_ids = {record["id"] for record in self.records}
        return {
            "problems": len(self.problems),
            "samples": len(self.candidates),
            "correct": sum(candidate.correct for candidate in self.candidates),
            "truncated": sum(c.finish_reason == "length" for c in self.candidates),
            "kept": len(self.records),
            "kept_tokens": sum(record["num_tokens"] for record in self.records),
            "problems_with_kept": len(kept_ids),
            "prompt_too_long_problems": len(self.prompt_too_long),
            "prompt_truncated_problems": len(self.prompt_truncated),
        }


# --------------------------------------------------------------------------- problems


def _line_problem(
    path: Path, number: int, record, problem_field: str, answer_field: str, id_field: str | None
) -> Problem:
    where = f"{path}:{number}"
    if not isinstance(record, dict):
        raise ProblemFileError(f"{where}: expected a JSON object, got {type(record).__name__}")
    fields = [(problem_field, "--problem_field"), (answer_field, "--answer_field")]
    fields += [(id_field, "--id_field")] if id_field else []
    for name, flag in fields:
        if name not in record:
            raise ProblemFileError(
                f"{where}: no field {name!r} (it has {sorted(record)}); set {flag}"
            )
    problem, answer = record[problem_field], record[answer_field]
    if not isinstance(problem, str) or not problem.strip():
        raise ProblemFileError(f"{where}: field {problem_field!r} must be a non-empty string")
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
        raise ProblemFileError(
            f"{where}: field {answer_field!r} must be a string or a number, "
            f"got {type(answer).__name__}"
        )
    problem_id = record[id_field] if id_field else number
    if isinstance(problem_id, bool) or not isinstance(problem_id, (str, int)):
        raise ProblemFileError(f"{where}: field {id_field!r} must be a string or an integer")
    return Problem(id=str(problem_id), problem=problem, answer=str(answer))


def load_problem_file(
    path: str | Path,
    *,
    problem_field: str = "problem",
    answer_field: str = "answer",
    id_field: str | None = None,
) -> list[Problem]:
    """Problems of a JSONL file, one object per non-blank line, in file order.

    A problem's id is its ``id_field`` value, or without one its 1-based line number.

    Raises:
        ProblemFileError: naming ``path:line`` for a line that is not a JSON object, lacks a
            field or has a field of the wrong type, or repeats an id; or a missing/empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise ProblemFileError(f"--problems: file not found: {str(path)!r}")
    problems, first_line = [], {}
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
            raise ProblemFileError(f"{path}:{number}: not a JSON line ({error})") from None
        problem = _line_problem(path, number, record, problem_field, answer_field, id_field)
        if problem.id in first_line:
            raise ProblemFileError(
                f"{path}:{number}: id {problem.id!r} repeats line {first_line[problem.id]}"
            )
        first_line[problem.id] = number
        problems.append(problem)
    if not problems:
        raise ProblemFileError(f"{path}: no problems (the file is empty)")
    return problems


def problems_digest(problems: Sequence[Problem]) -> str:
    """sha256 over the ids, statements and answers: detects an edited problems file on resume."""
    digest = hashlib.sha256()
    for problem in problems:
        digest.update(json.dumps([problem.id, problem.problem, problem.answer]).encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- sampling


def sft_prompt(problem: str, prompt_template: str) -> str:
    """The user turn the teacher saw for ``problem`` (its system message, if any, is not here)."""
    messages = prompt_templates.get_prompt_template(prompt_template).messages(problem)
    return next(message["content"] for message in reversed(messages) if message["role"] == "user")


def system_prompt(prompt_template: str) -> str | None:
    """The template's system message, to set as the sft spec's ``system_prompt``; or None."""
    messages = prompt_templates.get_prompt_template(prompt_template).messages("")
    return next((m["content"] for m in messages if m["role"] == "system"), None)


def _candidates(batch: Sequence[Problem], completions: Completions, grades) -> list[Candidate]:
    """The graded samples of a batch; a problem whose prompt did not fit has none."""
    n = completions.num_samples
    return [
        Candidate(
            problem_id=batch[row // n].id,
            sample=row % n,
            completion=text,
            num_tokens=int(completions.lengths[row]),
            finish_reason=str(completions.finish_reasons[row]),
            answer=grade.answer,
            correct=bool(grade.correct),
            status=str(grade.status),
        )
        for row, (text, grade) in enumerate(zip(completions.texts, grades))
        if not completions.prompt_too_long[row]
    ]


def _ids_where(batch: Sequence[Problem], flagged) -> list[str]:
    """Ids of the problems of ``batch`` that are ``flagged`` (bool [B])."""
    return [problem.id for problem, flag in zip(batch, flagged) if flag]


def _record(
    problem: Problem, candidate: Candidate, settings: DistillSettings, prompt_truncated: bool
) -> dict:
    prefix = prompt_templates.get_prompt_template(settings.prompt_template).assistant_prefix
    record = {
        settings.prompt_field: sft_prompt(problem.problem, settings.prompt_template),
        settings.response_field: prefix + candidate.completion,
        "id": problem.id,
        "sample": candidate.sample,
        "num_tokens": candidate.num_tokens,
        "extracted_answer": candidate.answer,
    }
    if settings.truncate_prompt == "left":
        record[TRUNCATION_FIELD] = prompt_truncated
    return record


def select_records(
    batch: Sequence[Problem],
    candidates: Sequence[Candidate],
    settings: DistillSettings,
    selector=None,
    *,
    prompt_truncated: Collection[str] = (),
) -> list[dict]:
    """The SFT records of a graded batch: correct (and, if asked, finished) samples, selected.

    ``prompt_truncated``: ids of the problems whose prompt the teacher saw cut.
    """
    selector = selector or make_selector(settings.select)
    by_problem = collections.defaultdict(list)
    for candidate in candidates:
        by_problem[candidate.problem_id].append(candidate)
    records = []
    for problem in batch:
        eligible = [
            candidate
            for candidate in by_problem[problem.id]
            if candidate.correct
            and not (settings.drop_truncated and candidate.finish_reason == "length")
        ]
        kept = selector(problem.problem, eligible, settings.keep_per_problem) if eligible else []
        records += [
            _record(problem, candidate, settings, problem.id in prompt_truncated)
            for candidate in sorted(kept, key=lambda candidate: candidate.sample)
        ]
    return records


def distill_batches(
    config: models.ModelConfig,
    params,
    tokenizer: data_lib.Tokenizer,
    problems: Sequence[Problem],
    settings: DistillSettings,
    *,
    grader: Grader | None = None,
    start_batch: int = 0,
) -> Iterator[BatchOutcome]:
    """Samples, grades and selects batch after batch (see :func:`distill`).

    Args:
        start_batch: skip the batches before it (resumption); later batches are unchanged.
        grader: default ``rewards.grade_batch`` with its default workers and timeout.
    """
    selector = make_selector(settings.select)
    long_prompts = LongPromptWarning(LONG_PROMPT_REMEDY)
    for index, batch in enumerate(problem_batches(problems, settings.batch_size)):
        if index < start_batch:
            continue
        completions = complete_problems(config, params, tokenizer, batch, settings)
        long_prompts.observe(batch, completions)
        grades = grade_completions(completions, [problem.answer for problem in batch], grader)
        candidates = _candidates(batch, completions, grades)
        truncated = _ids_where(batch, completions.by_prompt(completions.prompt_truncated))
        yield BatchOutcome(
            index,
            batch,
            candidates,
            select_records(batch, candidates, settings, selector, prompt_truncated=truncated),
            prompt_too_long=_ids_where(batch, completions.by_prompt(completions.prompt_too_long)),
            prompt_truncated=truncated,
        )


def distill(
    config: models.ModelConfig,
    params,
    tokenizer: data_lib.Tokenizer,
    problems: Sequence[Problem],
    settings: DistillSettings = DistillSettings(),
    *,
    grader: Grader | None = None,
) -> Iterator[dict]:
    """SFT records distilled from a loaded teacher, in problem order, then sample order.

    Args:
        config, params: the teacher (e.g. from ``models.load_hf_checkpoint``), on any mesh.
        tokenizer: the teacher's tokenizer.
        problems: ``rewards.Problem`` s (ids unique; see :func:`load_problem_file`).
        grader: (completions, golds) -> GradeResults; default ``rewards.grade_batch``.

    Yields:
        ``{prompt_field: str, response_field: str, "id": str, "sample": int,
        "num_tokens": int, "extracted_answer": str | None}`` per kept sample.
    """
    for outcome in distill_batches(config, params, tokenizer, problems, settings, grader=grader):
        yield from outcome.records


# --------------------------------------------------------------------------- resumable run


@dataclasses.dataclass(frozen=True)
class DistillJob:
    """A whole run: teacher, problem source and settings (stored with the output, checked on
    resume). Exactly one of ``problems`` (a JSONL path) and ``benchmark`` is set."""

    teacher: str
    tokenizer: str
    settings: DistillSettings
    problems: str | None = None
    benchmark: str | None = None
    problem_field: str = "problem"
    answer_field: str = "answer"
    id_field: str | None = None
    limit: int | None = None
    dtype: str = "float32"

    def __post_init__(self):
        check_at_least_one(limit=self.limit)
        if (self.problems is None) == (self.benchmark is None):
            raise SettingsError("give exactly one of --problems and --benchmark")
        if self.benchmark is not None and self.benchmark not in rewards.BENCHMARK_NAMES:
            raise SettingsError(
                f"--benchmark: unknown {self.benchmark!r}; known: {list(rewards.BENCHMARK_NAMES)}"
            )

    def load_problems(self) -> list[Problem]:
        """The run's problems: the first ``limit`` (all for None) of the source."""
        if self.benchmark is not None:
            problems = rewards.load_benchmark(self.benchmark)
        else:
            problems = load_problem_file(
                self.problems,
                problem_field=self.problem_field,
                answer_field=self.answer_field,
                id_field=self.id_field,
            )
        return problems[: self.limit]

    def stored_config(self, problems: Sequence[Problem]) -> dict:
        """Flag name -> value of everything that decides the output (the teacher's weights and
        the problems by digest)."""
        fields = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name != "settings"
        }
        return {
            **fields,
            **dataclasses.asdict(self.settings),
            "problems_sha256": problems_digest(problems),
            "checkpoint_sha256": checkpoint_digest(self.teacher),
        }


def _load_teacher(job: DistillJob, runtime: RuntimeSettings):
    """(config, params, tokenizer) of the job's teacher on the runtime's mesh."""
    return load_model(job.teacher, job.tokenizer, runtime=runtime, dtype=job.dtype)


def output_lock(output: Path) -> DirectoryLock:
    """The lock a run holds on ``output``: ``.<name>.lock`` in its folder."""
    return DirectoryLock(
        output.parent, purpose="the distillation", lock_name=f".{output.name}.lock"
    )


def run_distill(
    job: DistillJob,
    output: str | Path,
    runtime: RuntimeSettings = RuntimeSettings(),
    *,
    grader: Grader | None = None,
) -> dict:
    """Writes (or resumes) ``output`` and ``output.summary.json``; returns the summary.

    ``grader`` defaults to ``rewards.grade_batch`` with the runtime's workers and timeout.
    The problems and settings are checked before anything is written; the run holds
    :func:`output_lock` throughout.

    Raises:
        ProblemFileError, SettingsError: bad input or settings.
        reasonrl.workdir.DirectoryLockedError: another run is writing ``output``.
        run_store.ConfigMismatchError: ``output`` was made with other settings or weights.
        distill_store.OutputError: ``output`` exists but is not a resumable distillation output.
    """
    output = Path(output)
    problems = job.load_problems()
    check_context(job.teacher, job.settings.max_new_tokens)
    with output_lock(output):
        entries = distill_store.open_output(output, job.stored_config(problems))
        _distill_pending(job, output, problems, entries, runtime, grader)
        summary = {
            **distill_store.summarize(entries),
            "output": str(output),
            "select": job.settings.select,
            "sft_system_prompt": system_prompt(job.settings.prompt_template),
        }
        distill_store.write_summary(output, summary)
    return summary


def _distill_pending(
    job: DistillJob,
    output: Path,
    problems: Sequence[Problem],
    entries: list[dict],
    runtime: RuntimeSettings,
    grader: Grader | None,
) -> None:
    """Distills the batches after the finished ``entries`` into ``output``, appending theirs."""
    batches = problem_batches(problems, job.settings.batch_size)
    logging.info(
        "%d problems in %d batches, %d already done", len(problems), len(batches), len(entries)
    )
    if len(entries) == len(batches):
        return
    config, params, tokenizer = _load_teacher(job, runtime)
    for outcome in distill_batches(
        config,
        params,
        tokenizer,
        problems,
        job.settings,
        grader=grader or runtime.grader(),
        start_batch=len(entries),
    ):
        entries.append(
            distill_store.append_batch(output, outcome.index, outcome.records, outcome.counts())
        )
        logging.info(
            "batch %d/%d: kept %d records", outcome.index + 1, len(batches), len(outcome.records)
        )


# --------------------------------------------------------------------------- command line

FLAGS = flags.FLAGS
_DEFAULTS = DistillSettings()


def define_flags() -> None:
    """The absl flags of ``python -m reasonrl.synthetic.distill``."""
    flags.DEFINE_string(
        "teacher",
        None,
        "Hugging Face checkpoint directory, stage directory or "
        "reasonrl workdir (its last finished stage's export/).",
        required=True,
    )
    flags.DEFINE_string(
        "tokenizer", None, "Tokenizer file or directory; default: the teacher checkpoint directory."
    )
    flags.DEFINE_string("problems", None, "JSONL file of problems (or use --benchmark).")
    flags.DEFINE_enum(
        "benchmark",
        None,
        list(rewards.BENCHMARK_NAMES),
        "Vendored benchmark to take the problems from (instead of --problems).",
    )
    flags.DEFINE_string("problem_field", "problem", "--problems field holding the statement.")
    flags.DEFINE_string("answer_field", "answer", "--problems field holding the gold answer.")
    flags.DEFINE_string(
        "id_field", None, "--problems field holding a unique id; default: the line number."
    )
    flags.DEFINE_string(
        "output",
        None,
        "SFT JSONL to write; rerun to resume. Also writes "
        "OUTPUT.state.jsonl and OUTPUT.summary.json.",
        required=True,
    )
    flags.DEFINE_integer("num_samples", _DEFAULTS.num_samples, "Teacher samples per problem.")
    flags.DEFINE_float("temperature", _DEFAULTS.temperature, "Sampling temperature; 0 = greedy.")
    flags.DEFINE_float("top_p", _DEFAULTS.top_p, "Nucleus sampling threshold; 1 = off.")
    flags.DEFINE_integer("top_k", _DEFAULTS.top_k, "Top-k filtering; 0 = off.")
    flags.DEFINE_integer(
        "max_new_tokens",
        _DEFAULTS.max_new_tokens,
        "Generated tokens per sample at most (raise for long reasoning).",
    )
    flags.DEFINE_enum(
        "truncate_prompt",
        _DEFAULTS.truncate_prompt,
        list(TRUNCATE_PROMPT_CHOICES),
        "A prompt leaving no room for max_new_tokens in the teacher's context: none "
        "= skip the problem (counted in the summary); left = keep its last tokens.",
    )
    flags.DEFINE_enum(
        "prompt_template",
        _DEFAULTS.prompt_template,
        sorted(prompt_templates.PROMPT_TEMPLATES),
        "How a problem becomes the prompt.",
    )
    flags.DEFINE_enum(
        "chat_template",
        _DEFAULTS.chat_template,
        sorted(data_lib.CHAT_TEMPLATES),
        "Chat template of the teacher's prompts (use it for the sft task too).",
    )
    flags.DEFINE_integer(
        "batch_size",
        _DEFAULTS.batch_size,
        "Problems per generate call (each with num_samples rows).",
    )
    flags.DEFINE_integer("seed", _DEFAULTS.seed, "PRNG seed of the sampler.")
    flags.DEFINE_integer("limit", None, "Use only the first N problems (default: all).")
    flags.DEFINE_string(
        "select",
        _DEFAULTS.select,
        "Which correct samples to keep: all, "
        "shortest, longest or scorer:pkg.module:function (higher is better).",
    )
    flags.DEFINE_integer(
        "keep_per_problem",
        _DEFAULTS.keep_per_problem,
        "Samples kept per problem by shortest/longest/scorer.",
    )
    flags.DEFINE_bool(
        "drop_truncated",
        _DEFAULTS.drop_truncated,
        "Discard correct samples that hit --max_new_tokens.",
    )
    flags.DEFINE_string("prompt_field", _DEFAULTS.prompt_field, "Output field of the user turn.")
    flags.DEFINE_string(
        "response_field", _DEFAULTS.response_field, "Output field of the assistant turn."
    )
    flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Parameter dtype on load.")
    flags.DEFINE_integer("mesh_data", 1, "Mesh 'data' axis size (-1 = fill the devices).")
    flags.DEFINE_integer("mesh_fsdp", -1, "Mesh 'fsdp' axis size (-1 = fill the devices).")
    flags.DEFINE_integer("mesh_tensor", 1, "Mesh 'tensor' axis size (-1 = fill the devices).")
    flags.DEFINE_integer("grader_workers", None, "Grader processes (default: the grader's).")
    flags.DEFINE_float(
        "grader_timeout_s",
        rewards.DEFAULT_TIMEOUT_S,
        "Hard time limit of one answer-equivalence check.",
    )


def job_from_flags() -> DistillJob:
    """The parsed flags as a job (teacher and tokenizer checked, their paths made absolute)."""
    settings = DistillSettings(
        **{field.name: FLAGS[field.name].value for field in dataclasses.fields(DistillSettings)}
    )
    teacher, tokenizer = resolve_model_paths(
        FLAGS.teacher, FLAGS.tokenizer, checkpoint_flag="--teacher"
    )
    return DistillJob(
        teacher=teacher,
        tokenizer=tokenizer,
        settings=settings,
        problems=str(Path(FLAGS.problems).absolute()) if FLAGS.problems else None,
        benchmark=FLAGS.benchmark,
        problem_field=FLAGS.problem_field,
        answer_field=FLAGS.answer_field,
        id_field=FLAGS.id_field,
        limit=FLAGS.limit,
        dtype=FLAGS.dtype,
    )


def main(argv: list[str]) -> None:
    """Runs the distillation the flags describe; the user's errors end it with one line
    ``error: ...`` and exit status 2 (``reasonrl.cli``)."""
    if len(argv) > 1:
        raise SettingsError(f"unexpected arguments: {argv[1:]}")
    job = job_from_flags()
    runtime = RuntimeSettings(
        mesh_shape=(FLAGS.mesh_data, FLAGS.mesh_fsdp, FLAGS.mesh_tensor),
        grader_workers=FLAGS.grader_workers,
        grader_timeout_s=FLAGS.grader_timeout_s,
    )
    summary = run_distill(job, FLAGS.output, runtime)
    print(json.dumps(summary, indent=2, sort_keys=True))


if __name__ == "__main__":
    define_flags()
    reasonrl.cli.run(main)
