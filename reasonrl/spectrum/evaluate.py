"""The spectrum evals on a model: steerability, coverage and distributional alignment of
held-out tasks (`reasonrl.spectrum.suite`), as the official code measures them
(`reasonrl.spectrum.metrics`).

* steerability: each task's description and samples, rendered as one sequence in the chosen
  format (`spectrum`: the paper's roles; `chat`: user / assistant, for instruction-tuned
  models) and scored in one forward pass; every output j is scored given all before it.
* coverage: for each query, `num_samples` outputs sampled at `temperature` / `top_p` (the paper:
  100 at T = 1, top-p 1) after the prompt "description, input, output header"; valid = one of
  the query's candidates.
* distributional alignment: the probability of each candidate output after the same prompt,
  its content and end-of-turn token included (so "1" does not also count "10"; the official
  code scores the text alone), renormalised over the candidates, against the true
  distribution.

`evaluate_spectrum` returns the summary and one record per query (its samples, candidate
probabilities and target); `write_spectrum_reports` writes `summary.json`, `samples.jsonl`,
TensorBoard scalars and `spectrum.png` (per-family metrics and sample histograms against the
true distributions). `python -m evals.spectrum` is the command line.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from reasonrl.data.prompt_templates import stop_token_ids
from reasonrl.data.spectrum_format import FORMATS, SpectrumSample, prompt_ids, render_spectrum
from reasonrl.data.tokenizer.chat_templates import get_chat_template
from reasonrl.sampling import generate
from reasonrl.spectrum import metrics
from reasonrl.spectrum.scoring import score_sequences
from reasonrl.spectrum.suite import DEFAULT_SUITE, SuiteTask
from reasonrl.workdir import (
    atomic_save_figure,
    atomic_write_json,
    atomic_write_text,
    new_figure,
)

SUMMARY_FILE = "summary.json"
SAMPLES_FILE = "samples.jsonl"
PLOT_FILE = "spectrum.png"
TENSORBOARD_DIR = "tensorboard"
# The headline numbers, in the order reports print them.
HEADLINE = (
    "loss_geq_1",
    "all_acc_geq_1",
    "ece",
    "percent_valid",
    "unique_gens_pct",
    "yield",
    "js_divergence",
    "coverage",
)


@dataclasses.dataclass(frozen=True)
class SpectrumEvalSettings:
    """What an eval run does (the flags of `python -m evals.spectrum`).

    Attributes:
      suite: the held-out tasks (JSONL, `reasonrl.spectrum.suite`).
      format: "spectrum" (the paper's roles) or "chat" (user / assistant).
      chat_template: "chatml", "llama3" or "plain".
      num_samples: coverage samples per query.
      temperature, top_p: coverage sampling.
      max_new_tokens: longest sampled output.
      seed: coverage sampling seed.
      limit: evaluate the first `limit` tasks only.
      score_batch_size: sequences per scoring forward pass.
      sample_batch_size: queries per sampling call (each with num_samples rows).
    """

    suite: str = str(DEFAULT_SUITE)
    format: str = "spectrum"
    chat_template: str = "chatml"
    num_samples: int = 100
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 32
    seed: int = 0
    limit: int | None = None
    score_batch_size: int = 16
    sample_batch_size: int = 8

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"format: got {self.format!r}; expected one of {sorted(FORMATS)}")
        get_chat_template(self.chat_template)
        for name in ("num_samples", "max_new_tokens", "score_batch_size", "sample_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be > 0 and top_p in (0, 1]")


def _family_means(rows: Sequence[dict], names: Sequence[str]) -> dict[str, dict[str, float]]:
    by_family = collections.defaultdict(list)
    for row in rows:
        by_family[row["family"]].append(row)
    return {
        family: {name: float(np.mean([r[name] for r in group])) for name in names}
        for family, group in sorted(by_family.items())
    }


def _steerability(model, tasks: Sequence[SuiteTask], settings, template) -> tuple[dict, list]:
    config, params, tokenizer = model
    roles = FORMATS[settings.format]
    rendered = [
        render_spectrum(
            template,
            tokenizer,
            task.description,
            task.samples,
            max_tokens=config.max_position_embeddings,
            train_first_output=True,
            roles=roles,
        )
        for task in tasks
    ]
    scores = score_sequences(
        config,
        params,
        [r.token_ids.tolist() for r in rendered],
        batch_size=settings.score_batch_size,
        pad_id=tokenizer.pad_id,
    )
    outputs, rows = [], []
    for row, (task, sequence) in enumerate(zip(tasks, rendered)):
        task_outputs = []
        for j in range(sequence.num_samples):
            at = np.flatnonzero(sequence.output_index == j) - 1  # predicted from the token before
            task_outputs.append(
                metrics.output_score(
                    j,
                    scores.target_logprobs[row, at],
                    scores.argmax_match[row, at],
                    scores.top_logprobs[row, at],
                    scores.top_is_target[row, at],
                )
            )
        outputs += task_outputs
        later = [s for s in task_outputs if s.index >= 1]
        rows.append(
            {
                "family": task.family,
                "loss_geq_1": float(np.mean([s.loss for s in later])) if later else np.nan,
                "all_acc_geq_1": float(np.mean([s.all_acc for s in later])) if later else np.nan,
            }
        )
    return metrics.steerability(outputs), rows


def _candidate_logprobs(model, tasks, settings, template) -> list[np.ndarray]:
    """log p(candidate + end-of-turn | prompt) of every candidate of every query, in order."""
    config, params, tokenizer = model
    roles = FORMATS[settings.format]
    sequences, spans = [], []
    for task in tasks:
        for query in task.queries:
            for candidate in query.candidates:
                rendered = render_spectrum(
                    template,
                    tokenizer,
                    task.description,
                    [SpectrumSample(output=candidate, input=query.input)],
                    train_first_output=True,
                    roles=roles,
                )
                sequences.append(rendered.token_ids.tolist())
                spans.append(np.flatnonzero(rendered.output_index == 0) - 1)
    scores = score_sequences(
        config, params, sequences, batch_size=settings.score_batch_size, pad_id=tokenizer.pad_id
    )
    flat = [float(scores.target_logprobs[row, at].sum()) for row, at in enumerate(spans)]
    per_query, start = [], 0
    for task in tasks:
        for query in task.queries:
            per_query.append(np.asarray(flat[start : start + len(query.candidates)]))
            start += len(query.candidates)
    return per_query


def _sample_outputs(model, tasks, settings, template) -> list[list[str]]:
    """`num_samples` outputs per query (text without the end-of-turn token), in order."""
    config, params, tokenizer = model
    roles = FORMATS[settings.format]
    prompts = [
        prompt_ids(template, tokenizer, task.description, query.input, roles)
        for task in tasks
        for query in task.queries
    ]
    stops = stop_token_ids(tokenizer, settings.chat_template)
    texts: list[list[str]] = []
    for start in range(0, len(prompts), settings.sample_batch_size):
        group = prompts[start : start + settings.sample_batch_size]
        result = generate(
            config,
            params,
            group,
            max_new_tokens=settings.max_new_tokens,
            rng=jax.random.fold_in(jax.random.key(settings.seed), start),
            temperature=settings.temperature,
            top_p=settings.top_p,
            num_samples=settings.num_samples,
            stop_tokens=stops,
            pad_id=tokenizer.pad_id,
        )
        for prompt in range(len(group)):
            rows = range(prompt * settings.num_samples, (prompt + 1) * settings.num_samples)
            decoded = []
            for r in rows:
                length = int(result.lengths[r])
                ids = result.tokens[r, :length].tolist()
                if result.finish_reasons[r] == "stop":
                    ids = ids[:-1]
                decoded.append(tokenizer.decode(ids))
            texts.append(decoded)
    return texts


def evaluate_spectrum(
    config, params, tokenizer, tasks: Sequence[SuiteTask], settings: SpectrumEvalSettings
) -> tuple[dict, list[dict]]:
    """(summary, one record per query) of the three evals on `tasks`."""
    model = (config, params, tokenizer)
    template = get_chat_template(settings.chat_template)
    steer, steer_rows = _steerability(model, tasks, settings, template)
    candidate_logprobs = _candidate_logprobs(model, tasks, settings, template)
    samples = _sample_outputs(model, tasks, settings, template)
    records, query_rows = [], []
    queries = [(task, q) for task in tasks for q in task.queries]
    for (task, query), logprobs, texts in zip(queries, candidate_logprobs, samples):
        alignment = metrics.distributional_alignment(logprobs, query.probs)
        coverage = metrics.sample_coverage(texts, query.candidates)
        counts = collections.Counter(t.strip() for t in texts)
        query_rows.append({"family": task.family, **alignment, **coverage})
        records.append(
            {
                "id": task.id,
                "family": task.family,
                "input": query.input,
                "candidates": list(query.candidates),
                "target_probs": list(query.probs),
                "model_probs": np.exp(logprobs - np.logaddexp.reduce(logprobs)).tolist(),
                "sample_counts": [counts.get(c, 0) for c in query.candidates],
                "samples": texts,
                **alignment,
                **coverage,
            }
        )
    query_names = ("js_divergence", "coverage", "percent_valid", "unique_gens_pct", "yield")
    query_means = {n: float(np.mean([r[n] for r in query_rows])) for n in query_names}
    summary = {
        "metrics": {name: {**steer, **query_means}[name] for name in HEADLINE},
        "steerability": steer,
        "by_family": {
            family: {**_family_means(steer_rows, ("loss_geq_1", "all_acc_geq_1"))[family], **values}
            for family, values in _family_means(query_rows, query_names).items()
        },
        "num_tasks": len(tasks),
        "num_queries": len(queries),
        "settings": dataclasses.asdict(settings),
    }
    return summary, records


def _plot(summary: dict, records: list[dict], path: Path, title: str) -> None:
    families = sorted(summary["by_family"])
    shown = [next(r for r in records if r["family"] == f) for f in families][:6]
    figure = new_figure(figsize=(16, 7))
    axes = figure.subplots(2, 4)
    axes = axes.ravel()
    for ax, name in zip(axes[:2], ("js_divergence", "yield")):
        ax.bar(families, [summary["by_family"][f][name] for f in families])
        ax.set_title(f"{name} by family (mean {summary['metrics'][name]:.3f})")
        ax.tick_params(axis="x", rotation=45)
    for ax, record in zip(axes[2:], shown):
        x = np.arange(len(record["candidates"]))
        total = max(sum(record["sample_counts"]), 1)
        ax.bar(x - 0.2, record["target_probs"], width=0.4, label="true")
        ax.bar(
            x + 0.2, np.asarray(record["sample_counts"]) / total, width=0.4, label="valid samples"
        )
        ax.set_xticks(x, [c[:12] for c in record["candidates"]], rotation=45, fontsize=7)
        ax.set_title(record["id"], fontsize=9)
        ax.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    atomic_save_figure(figure, path)


def write_spectrum_reports(
    output_dir: str | Path, summary: dict, records: list[dict], *, title: str = "spectrum eval"
) -> None:
    """`summary.json`, `samples.jsonl`, TensorBoard scalars (step 0) and the PNG."""
    from clu import metric_writers

    output_dir = Path(output_dir)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    atomic_write_text(output_dir / SAMPLES_FILE, lines)
    atomic_write_json(output_dir / SUMMARY_FILE, summary)
    writer = metric_writers.create_default_writer(
        str(output_dir / TENSORBOARD_DIR), just_logging=False
    )
    writer.write_scalars(0, {f"spectrum/{k}": v for k, v in summary["metrics"].items()})
    writer.flush()
    writer.close()
    _plot(summary, records, output_dir / PLOT_FILE, title)
