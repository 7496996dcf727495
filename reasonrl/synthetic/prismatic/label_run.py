"""The ``label`` subcommand: self-consistency labels for problems without gold answers.

Every problem gets ``num_samples`` completions from the sampler (``problem_runs``: batches of
``batch_size`` problems keyed by their first id, so resumes and reruns draw the same samples);
:mod:`~reasonrl.synthetic.prismatic.self_consistency` votes. A kept problem becomes one SFT
record of ``--output``:

    {"question": <user turn>, "answer": <assistant prefix + a majority completion>,
     "id", "problem", "label", "agreement", "votes", "valid_answers", "num_samples", "sample"}
    (+ "gold", "label_correct" when --answer_field names gold answers, for evaluation only)

which the ``sft`` task reads (prompt_field / response_field) and ``features`` takes as it is.
Problems not kept are listed, with the reason and their vote, in ``OUT.jsonl.rejects.jsonl``
and counted in ``OUT.jsonl.summary.json``; none is dropped silently. Resumption, the lock and the
refusal of changed settings are the distillation command's (``distill_store``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from absl import logging

from reasonrl.data import prompt_templates
from reasonrl.rewards import Problem, extract_answer
from reasonrl.sampling.problem_runs import (
    RuntimeSettings,
    SettingsError,
    TeacherSampling,
    check_at_least_one,
    check_context,
    checkpoint_digest,
    complete_problems,
    load_model,
    problem_batches,
)
from reasonrl.synthetic import distill_store
from reasonrl.synthetic.distill import sft_prompt
from reasonrl.synthetic.prismatic import self_consistency as sc
from reasonrl.synthetic.prismatic.records import file_digest, load_records
from reasonrl.workdir import DirectoryLock, atomic_write_text

COUNT_FIELDS = ("problems", "samples", "valid_answers", "kept", "with_gold", "label_correct")
REJECTS_SUFFIX = ".rejects.jsonl"
# Fields every kept record carries besides the two turns (the sft task ignores them).
RECORD_FIELDS = (
    "id", "problem", "label", "agreement", "votes", "valid_answers", "num_samples", "sample",
    "gold", "label_correct",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class LabelSettings(TeacherSampling):
    """Sampling (``problem_runs.TeacherSampling``) and voting settings.

    Attributes:
        threshold: share of the valid answers the majority class needs, in (0, 1].
        prompt_field, response_field: output field names of the user and assistant turns.
    """

    threshold: float = 0.5
    prompt_field: str = "question"
    response_field: str = "answer"

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.threshold <= 1:
            raise SettingsError(f"--threshold must be in (0, 1], got {self.threshold}")
        fields = (self.prompt_field, self.response_field)
        if not all(fields) or len(set(fields)) != 2 or set(fields) & set(RECORD_FIELDS):
            raise SettingsError(
                f"--prompt_field and --response_field must be two different non-empty names, "
                f"not among {list(RECORD_FIELDS)}; got {self.prompt_field!r}, "
                f"{self.response_field!r}"
            )


@dataclasses.dataclass(frozen=True)
class LabelJob:
    """The model, the problems file and the settings (stored, compared on resume)."""

    model: str
    tokenizer: str
    problems: str
    settings: LabelSettings = LabelSettings()
    problem_field: str = "problem"
    answer_field: str | None = None
    id_field: str | None = None
    limit: int | None = None
    dtype: str = "float32"

    def load(self) -> list[Problem]:
        """The first ``limit`` problems; ``answer`` is the gold answer or "" without one."""
        check_at_least_one(limit=self.limit)
        fields = [(self.problem_field, "--problem_field")]
        ids, records = load_records(
            self.problems, flag="--problems", fields=fields, id_field=self.id_field
        )
        golds = [
            str(record.get(self.answer_field, "")) if self.answer_field else ""
            for record in records
        ]
        problems = [
            Problem(id=i, problem=record[self.problem_field], answer=gold)
            for i, record, gold in zip(ids, records, golds)
        ]
        return problems[: self.limit]

    def stored_config(self) -> dict:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.pop("settings")
        return {
            **fields,
            **dataclasses.asdict(self.settings),
            "problems_sha256": file_digest(self.problems),
            "checkpoint_sha256": checkpoint_digest(self.model),
        }


def label_batch(
    problems: Sequence[Problem],
    texts: Sequence[str],
    finish_reasons: Sequence[str],
    prompt_too_long: Sequence[bool],
    settings: LabelSettings,
    equivalent: sc.EquivalenceFn,
) -> tuple[list[dict], list[dict], dict]:
    """(kept records, rejects, counts) of one batch from its completions (row = problem * n +
    sample; ``prompt_too_long`` per row)."""
    n = settings.num_samples
    answers = [extract_answer(text) for text in texts]
    classes = sc.answer_classes(
        [answers[j * n : (j + 1) * n] for j in range(len(problems))], equivalent
    )
    prefix = prompt_templates.get_prompt_template(settings.prompt_template).assistant_prefix
    kept, rejects = [], []
    for j, problem in enumerate(problems):  # host bookkeeping over the batch's problems
        rows = slice(j * n, (j + 1) * n)
        vote = sc.majority_vote(classes[j])
        finished = np.asarray(finish_reasons[rows]) != "length"
        reason = (
            "prompt_too_long"
            if prompt_too_long[j * n]
            else sc.rejection_reason(vote, finished, settings.threshold)
        )
        members = np.flatnonzero(vote.classes == vote.majority) if vote.majority >= 0 else []
        label = answers[j * n + members[0]] if len(members) else None
        summary = {
            "id": problem.id,
            "problem": problem.problem,
            "label": label,
            "agreement": vote.agreement,
            "votes": vote.votes,
            "valid_answers": vote.valid,
            "num_samples": n,
        }
        if reason is not None:
            rejects.append({**summary, "reason": reason})
            continue
        sample = int(np.flatnonzero(finished & (vote.classes == vote.majority))[0])
        kept.append(
            {
                settings.prompt_field: sft_prompt(problem.problem, settings.prompt_template),
                settings.response_field: prefix + texts[j * n + sample],
                **summary,
                "sample": sample,
            }
        )
    _mark_gold(problems, kept + rejects, equivalent)
    counts = {
        "problems": len(problems),
        "samples": len(problems) * n,
        "valid_answers": sum(item["valid_answers"] for item in kept + rejects),
        "kept": len(kept),
        "with_gold": sum("gold" in record for record in kept),
        "label_correct": sum(bool(record.get("label_correct")) for record in kept),
    }
    return kept, rejects, counts


def _mark_gold(problems: Sequence[Problem], items: list[dict], equivalent) -> None:
    """Adds "gold" and "label_correct" to the items of problems with a gold answer."""
    golds = {problem.id: problem.answer for problem in problems if problem.answer}
    checked = [item for item in items if item["id"] in golds and item["label"]]
    verdicts = equivalent([i["label"] for i in checked], [golds[i["id"]] for i in checked])
    correct = {item["id"]: bool(v) for item, v in zip(checked, verdicts)}
    for item in items:
        if item["id"] in golds:
            item["gold"] = golds[item["id"]]
            item["label_correct"] = correct.get(item["id"], False)


def run_label(
    job: LabelJob, output: str | Path, runtime: RuntimeSettings, *, equivalent=None
) -> dict:
    """Writes (or resumes) ``output``, its rejects and summary; returns the summary.

    ``equivalent`` defaults to the grader's equivalence with the runtime's workers and timeout.
    """
    output = Path(output)
    problems = job.load()
    check_context(job.model, job.settings.max_new_tokens)
    equivalent = equivalent or sc.grader_equivalence(
        runtime.grader_timeout_s, runtime.grader_workers
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    lock = DirectoryLock(output.parent, purpose="the labelling", lock_name=f".{output.name}.lock")
    with lock:
        entries = distill_store.open_output(output, job.stored_config())
        batches = problem_batches(problems, job.settings.batch_size)
        if len(entries) < len(batches):
            model = load_model(job.model, job.tokenizer, runtime=runtime, dtype=job.dtype)
        for index in range(len(entries), len(batches)):
            completions = complete_problems(*model, batches[index], job.settings)
            kept, rejects, counts = label_batch(
                batches[index],
                completions.texts,
                [str(reason) for reason in completions.finish_reasons],
                [bool(flag) for flag in completions.prompt_too_long],
                job.settings,
                equivalent,
            )
            entries.append(
                distill_store.append_batch(
                    output,
                    index,
                    kept,
                    counts,
                    count_fields=COUNT_FIELDS,
                    details={"rejects": rejects},
                )
            )
            logging.info("batch %d/%d: kept %d", index + 1, len(batches), len(kept))
        summary = summarize(entries, output)
        rejects = [item for entry in entries for item in entry["rejects"]]
        atomic_write_text(
            output.with_name(output.name + REJECTS_SUFFIX),
            "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in rejects),
        )
        distill_store.write_summary(output, summary)
    return summary


def summarize(entries: Sequence[dict], output: Path) -> dict:
    """Totals over the state entries, the rejects by reason, and the label accuracy."""
    totals = {name: sum(entry[name] for entry in entries) for name in COUNT_FIELDS}
    rejects = [item for entry in entries for item in entry["rejects"]]
    reasons = {}
    for item in rejects:
        reasons[item["reason"]] = reasons.get(item["reason"], 0) + 1
    return {
        **totals,
        "rejected": len(rejects),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "label_accuracy": totals["label_correct"] / totals["with_gold"]
        if totals["with_gold"]
        else None,
        "output": str(output),
        "rejects": str(output.with_name(output.name + REJECTS_SUFFIX)),
    }
