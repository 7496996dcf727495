"""Run results: ``summary.json``, TensorBoard scalars and a PNG plot, all from ``samples.jsonl``.

``summary.json`` fields:

* ``benchmark``, ``num_problems``, ``num_samples`` (per problem), ``total_samples``
* ``pass@1`` -- per-sample accuracy averaged over samples, then problems
* ``pass@k`` -- {k: unbiased pass@k averaged over problems} for k = 1, 2, 4, ... up to n
* ``maj@k`` -- {k: majority-vote accuracy over the first k samples} for the same k
* ``mean_completion_tokens``, ``truncation_rate`` (finish reason ``length``): over the samples
  that were generated (not those of a ``prompt_too_long`` problem)
* ``status_counts`` -- samples per grader status, ``prompt_too_long`` included
* ``prompt_too_long_problems`` -- problems not sampled because their prompt did not fit (their
  samples count as incorrect); ``prompt_truncated_problems`` -- problems whose prompt was cut
  (``--truncate_prompt=left``)
* ``by_subject`` / ``by_level`` -- {group: {num_problems, pass@1}} (MATH-500 only)
* ``distinct_answers`` -- distinct normalised final answers among a problem's n samples (samples
  without an answer do not count), averaged over problems; ``distinct_answers_per_problem`` --
  {problem id: that count}
* ``pass@k_gap`` -- {k: pass@k - pass@1}: what sampling more buys over one sample; a shrinking
  gap as training goes on is the accuracy-side sign of a collapsing output distribution

See :mod:`evals.common.metrics` for the estimator and the vote's tie rule. ``summary.json`` and
the plot are replaced atomically: a full or read-only disk leaves the previous files (or none),
never a torn or empty one, and raises an OSError naming the file.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Sequence
from pathlib import Path

from clu import metric_writers

from evals.common import metrics
from reasonrl.rewards import Problem, normalize_answer
from reasonrl.sampling.completions import PROMPT_TOO_LONG
from reasonrl.workdir import atomic_save_figure, atomic_write_text, new_figure

SUMMARY_FILE = "summary.json"
PLOT_FILE = "accuracy.png"
TENSORBOARD_DIR = "tensorboard"


def _samples_by_problem(
    records: Sequence[dict], problems: Sequence[Problem], num_samples: int
) -> dict[str, list[dict]]:
    """problem id -> its records ordered by sample index; checks each has exactly n samples."""
    grouped: dict[str, list[dict]] = {problem.id: [] for problem in problems}
    for record in records:
        if record["id"] in grouped:
            grouped[record["id"]].append(record)
    for problem_id, group in grouped.items():
        group.sort(key=lambda record: record["sample"])
        indices = [record["sample"] for record in group]
        if indices != list(range(num_samples)):
            raise ValueError(
                f"problem {problem_id!r} has samples {indices}, expected "
                f"0..{num_samples - 1} exactly once"
            )
    return grouped


def _group_pass_at_1(
    problems: Sequence[Problem], accuracy: dict[str, float], key
) -> dict[str, dict]:
    groups: dict[str, list[float]] = collections.defaultdict(list)
    for problem in problems:
        groups[str(key(problem))].append(accuracy[problem.id])
    return {
        name: {"num_problems": len(values), "pass@1": metrics.mean(values)}
        for name, values in sorted(groups.items())
    }


def _problems_with(grouped: dict[str, list[dict]], predicate) -> int:
    """The number of problems with a record for which ``predicate(record)`` holds."""
    return sum(any(predicate(record) for record in group) for group in grouped.values())


def summarize(
    benchmark: str, problems: Sequence[Problem], records: Sequence[dict], num_samples: int
) -> dict:
    """The ``summary.json`` content (fields in the module docstring)."""
    grouped = _samples_by_problem(records, problems, num_samples)
    ks = metrics.k_values(num_samples)
    accuracy, pass_at, majority = {}, collections.defaultdict(list), collections.defaultdict(list)
    distinct_answers = {}
    for problem in problems:
        group = grouped[problem.id]
        correct = [bool(record["correct"]) for record in group]
        answers = [
            None if record["answer"] is None else normalize_answer(record["answer"])
            for record in group
        ]
        accuracy[problem.id] = sum(correct) / num_samples
        distinct_answers[problem.id] = len({answer for answer in answers if answer is not None})
        for k in ks:
            pass_at[k].append(metrics.pass_at_k(num_samples, sum(correct), k))
            majority[k].append(float(metrics.majority_vote(answers[:k], correct[:k])))
    samples = [record for group in grouped.values() for record in group]
    sampled = [record for record in samples if record["finish_reason"] != PROMPT_TOO_LONG]
    summary = {
        "benchmark": benchmark,
        "num_problems": len(problems),
        "num_samples": num_samples,
        "total_samples": len(samples),
        "pass@1": metrics.mean(list(accuracy.values())),
        "pass@k": {str(k): metrics.mean(values) for k, values in pass_at.items()},
        "pass@k_gap": {
            str(k): metrics.mean(values) - metrics.mean(pass_at[1]) for k, values in pass_at.items()
        },
        "maj@k": {str(k): metrics.mean(values) for k, values in majority.items()},
        "mean_completion_tokens": metrics.mean([record["num_tokens"] for record in sampled]),
        "truncation_rate": metrics.mean(
            [float(record["finish_reason"] == "length") for record in sampled]
        ),
        "status_counts": dict(sorted(collections.Counter(r["status"] for r in samples).items())),
        "prompt_too_long_problems": _problems_with(
            grouped, lambda record: record["finish_reason"] == PROMPT_TOO_LONG
        ),
        "prompt_truncated_problems": _problems_with(
            grouped, lambda record: record.get("prompt_truncated", False)
        ),
        "distinct_answers": metrics.mean(list(distinct_answers.values())),
        "distinct_answers_per_problem": distinct_answers,
    }
    if all(problem.level is not None for problem in problems):
        summary["by_subject"] = _group_pass_at_1(problems, accuracy, lambda p: p.subject)
        summary["by_level"] = _group_pass_at_1(problems, accuracy, lambda p: p.level)
    return summary


def summary_scalars(summary: dict) -> dict[str, float]:
    """Flat ``<benchmark>/<metric>`` scalars of a summary, for TensorBoard."""
    prefix = summary["benchmark"]
    scalars = {
        f"{prefix}/pass@1": summary["pass@1"],
        f"{prefix}/mean_completion_tokens": summary["mean_completion_tokens"],
        f"{prefix}/truncation_rate": summary["truncation_rate"],
        f"{prefix}/distinct_answers": summary["distinct_answers"],
    }
    largest = max(summary["pass@k_gap"], key=int)
    scalars[f"{prefix}/pass@{largest}_minus_pass@1"] = summary["pass@k_gap"][largest]
    for name in ("pass@k", "maj@k"):
        for k, value in summary[name].items():
            scalars[f"{prefix}/{name[:-1]}{k}"] = value
    for level, values in summary.get("by_level", {}).items():
        scalars[f"{prefix}/level_{level}/pass@1"] = values["pass@1"]
    return scalars


def plot(summary: dict, path: Path) -> None:
    """PNG: the pass@k and maj@k curves; with levels (MATH-500), accuracy by level beside it.
    Saved to a temporary file beside ``path``, then renamed over it."""
    levels = summary.get("by_level")
    figure = new_figure(figsize=(11 if levels else 6, 4))
    axes = figure.subplots(1, 2 if levels else 1, squeeze=False)
    curve = axes[0][0]
    for name in ("pass@k", "maj@k"):
        ks = [int(k) for k in summary[name]]
        curve.plot(ks, [100 * v for v in summary[name].values()], marker="o", label=name)
    curve.set_xscale("log", base=2)
    curve.set_xticks(ks, [str(k) for k in ks])
    curve.set(
        xlabel="k (samples)",
        ylabel="accuracy (%)",
        ylim=(0, 100),
        title=f"{summary['benchmark']}: pass@k, maj@k (n={summary['num_samples']})",
    )
    curve.legend()
    if levels:
        bars = axes[0][1]
        positions = range(len(levels))
        bars.bar(positions, [100 * v["pass@1"] for v in levels.values()])
        bars.set_xticks(positions, list(levels))
        bars.set(xlabel="MATH level", ylabel="pass@1 (%)", ylim=(0, 100), title="pass@1 by level")
    figure.tight_layout()
    plot_to(figure, path)


def plot_to(figure, path: Path) -> None:
    """Saves ``figure`` as a PNG atomically over ``path``."""
    atomic_save_figure(figure, path)


def write_reports(output_dir: Path, summary: dict) -> None:
    """Writes ``summary.json``, the TensorBoard scalars (step 0) and the PNG plot."""
    atomic_write_text(output_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    (output_dir / TENSORBOARD_DIR).mkdir(exist_ok=True)  # a read-only disk: a one-line OSError
    writer = metric_writers.create_default_writer(
        str(output_dir / TENSORBOARD_DIR), just_logging=False
    )
    writer.write_scalars(0, summary_scalars(summary))
    writer.flush()
    writer.close()
    plot(summary, output_dir / PLOT_FILE)
