"""The diversity eval's measurements and outputs, all from ``samples.jsonl``.

Per prompt (its k responses in sample order; prompts whose prompt did not fit are left out and
counted in ``prompt_too_long_prompts``), written to ``per_prompt.jsonl``: the NoveltyBench
partition, ``distinct_k``, ``utility_k`` (u_i from the recorded reward bucketed by
``reward_thresholds``; u_i = 1 without a reward model), the hivemind mean pairwise similarity of
the response embeddings, their Vendi score, distinct-1 / distinct-2 and, with ``--compare_to``,
the inter-model similarity (10 x 10 random cross pairs; the draw is seeded by ``--seed`` and the
prompt id).

``summary.json``: the means over prompts of those (``distinct_k``, ``utility_k``,
``hivemind_mean_similarity``, ``vendi``, ``distinct_1``, ``distinct_2``,
``hivemind_inter_model_similarity``), ``hivemind_fraction_above_0.8``, ``hivemind_histogram``
(10 bins on [0, 1]), ``by_category`` (the same means per category, NoveltyBench curated),
``utility_quality`` (where u came from), the settings that produced them, sample statistics and
``timing``. Means skip NaN (a prompt with one response has no pairwise similarity). Plots:
``diversity.png`` (the similarity histogram; distinct_k per category, or its distribution over
prompts). ``summary.json``, ``per_prompt.jsonl`` and the plot are replaced atomically.
"""

from __future__ import annotations

import collections
import json
import math
from pathlib import Path

import numpy as np
from clu import metric_writers

from evals.common.report import TENSORBOARD_DIR, _samples_by_problem, plot_to
from reasonrl import diversity
from reasonrl.sampling.completions import PROMPT_TOO_LONG
from reasonrl.sampling.keys import stable_hash
from reasonrl.workdir import atomic_write_text, new_figure

SUMMARY_FILE = "summary.json"
PER_PROMPT_FILE = "per_prompt.jsonl"
PLOT_FILE = "diversity.png"
MEASURES = (
    "distinct_k",
    "utility_k",
    "hivemind_mean_similarity",
    "vendi",
    "distinct_1",
    "distinct_2",
)


def _mean(values) -> float:
    values = [value for value in values if value is not None and not math.isnan(value)]
    return float(np.mean(values)) if values else math.nan


def _measure_prompt(texts, embeddings, rewards, measure) -> dict:
    """The per-prompt measurements of k responses (module docstring)."""
    test = diversity.EQUIVALENCE_TESTS[measure.equivalence]
    classes = diversity.partition(
        len(texts), test(texts, embeddings, measure.equivalence_threshold)
    )
    qualities = (
        None if rewards is None else diversity.quality_buckets(rewards, measure.reward_thresholds)
    )
    novelty = diversity.novelty_scores(classes, qualities, measure.patience)
    return {
        "partition": classes,
        "generation_scores": list(novelty.generation_scores),
        "distinct_k": novelty.distinct,
        "utility_k": novelty.utility,
        "hivemind_mean_similarity": diversity.mean_pairwise_similarity(embeddings),
        "vendi": diversity.vendi_score(embeddings),
        "distinct_1": diversity.distinct_n(texts, 1),
        "distinct_2": diversity.distinct_n(texts, 2),
    }


def _embed_groups(encoder, groups: dict[str, list[str]], batch_size: int) -> dict:
    """id -> unit embeddings float32 [k, D] of that prompt's texts (one encoder pass)."""
    flat = [text for texts in groups.values() for text in texts]
    embeddings = encoder.encode(flat, batch_size=batch_size)
    out, start = {}, 0
    for prompt_id, texts in groups.items():
        out[prompt_id] = embeddings[start : start + len(texts)]
        start += len(texts)
    return out


def _other_groups(records: list[dict] | None, wanted: set[str]) -> dict[str, list[str]]:
    """id -> the other run's sampled completions, in sample order, for the prompts in ``wanted``."""
    groups = collections.defaultdict(list)
    for record in sorted(records or [], key=lambda r: (str(r["id"]), r["sample"])):
        if record["id"] in wanted and record["finish_reason"] != PROMPT_TOO_LONG:
            groups[record["id"]].append(record["completion"])
    return dict(groups)


def _means(rows: list[dict]) -> dict:
    """{measure: mean over ``rows``} for every name in MEASURES."""
    return {name: _mean([row[name] for row in rows]) for name in MEASURES}


def summarize(settings, measure, prompts, records, other_records, encoder):
    """(summary dict, per-prompt rows) of a run (fields in the module docstring)."""
    grouped = _samples_by_problem(records, prompts, settings.num_samples)
    too_long = {
        prompt_id
        for prompt_id, group in grouped.items()
        if any(record["finish_reason"] == PROMPT_TOO_LONG for record in group)
    }
    measured = [prompt for prompt in prompts if prompt.id not in too_long]
    texts = {p.id: [record["completion"] for record in grouped[p.id]] for p in measured}
    other = _other_groups(other_records, set(texts))
    embeddings = _embed_groups(encoder, texts, measure.encoder_batch_size)
    other_embeddings = _embed_groups(encoder, other, measure.encoder_batch_size)
    rows = []
    for prompt in measured:
        group = grouped[prompt.id]
        rewards = [record["reward"] for record in group] if settings.reward_model else None
        row = {"id": prompt.id, "category": prompt.category}
        row.update(_measure_prompt(texts[prompt.id], embeddings[prompt.id], rewards, measure))
        if prompt.id in other_embeddings:
            rng = np.random.default_rng([settings.seed, stable_hash(prompt.id)])
            row["hivemind_inter_model_similarity"] = diversity.cross_model_similarity(
                embeddings[prompt.id], other_embeddings[prompt.id], rng
            )
        rows.append(row)
    similarities = [row["hivemind_mean_similarity"] for row in rows]
    sampled = [r for g in grouped.values() for r in g if r["finish_reason"] != PROMPT_TOO_LONG]
    summary = {
        "benchmark": settings.benchmark,
        "num_prompts": len(prompts),
        "num_samples": settings.num_samples,
        "num_prompts_measured": len(rows),
        **_means(rows),
        "hivemind_fraction_above_0.8": diversity.fraction_above(similarities),
        "hivemind_histogram": diversity.similarity_histogram(similarities),
        "prompt_too_long_prompts": len(too_long),
        "mean_completion_tokens": _mean([record["num_tokens"] for record in sampled]),
        "truncation_rate": _mean([float(r["finish_reason"] == "length") for r in sampled]),
        "equivalence": measure.equivalence,
        "equivalence_threshold": measure.equivalence_threshold
        if measure.equivalence_threshold is not None
        else diversity.DEFAULT_THRESHOLDS[measure.equivalence],
        "patience": measure.patience,
        "utility_quality": (
            f"reward model {settings.reward_model}, raw reward bucketed by reward_thresholds"
            if settings.reward_model
            else "none: u_i = 1, so utility_k is a patience-weighted count of distinct responses"
        ),
        "reward_thresholds": list(measure.reward_thresholds) if settings.reward_model else None,
        "encoder": encoder.directory,
    }
    if other_records is not None:
        summary["compare_to"] = measure.compare_to
        summary["hivemind_inter_model_similarity"] = _mean(
            [row.get("hivemind_inter_model_similarity") for row in rows]
        )
    by_category = collections.defaultdict(list)
    for row in rows:
        if row["category"] is not None:
            by_category[row["category"]].append(row)
    if by_category:
        summary["by_category"] = {
            name: {"num_prompts": len(group), **_means(group)}
            for name, group in sorted(by_category.items())
        }
    return summary, rows


def summary_scalars(summary: dict) -> dict[str, float]:
    """Flat ``diversity/<set>/<metric>`` scalars for TensorBoard."""
    prefix = f"diversity/{Path(summary['benchmark']).stem}"
    names = (*MEASURES, "hivemind_fraction_above_0.8", "hivemind_inter_model_similarity")
    return {f"{prefix}/{name}": summary[name] for name in names if name in summary}


def plot(summary: dict, rows: list[dict], path: Path) -> None:
    """diversity.png: the similarity histogram, and distinct_k by category (or over prompts)."""
    figure = new_figure(figsize=(11, 4))
    left, right = figure.subplots(1, 2)
    histogram = summary["hivemind_histogram"]
    edges = histogram["edges"]
    left.bar(edges[:-1], [100 * f for f in histogram["fractions"]], width=0.1, align="edge")
    left.axvline(diversity.hivemind.HIGH_SIMILARITY, color="gray", linestyle="--", linewidth=1)
    left.set(
        xlabel="mean pairwise cosine similarity of a prompt's responses",
        ylabel="prompts (%)",
        xlim=(0, 1),
        title=f"{Path(summary['benchmark']).stem}: intra-model similarity",
    )
    k = summary["num_samples"]
    categories = summary.get("by_category")
    if categories:
        names = list(categories)
        right.barh(range(len(names)), [categories[n]["distinct_k"] for n in names])
        right.set_yticks(range(len(names)), names, fontsize=7)
        right.set(xlabel=f"distinct_k (of k={k})", xlim=(0, k), title="distinct_k by category")
    else:
        counts = collections.Counter(row["distinct_k"] for row in rows)
        right.bar(range(1, k + 1), [counts.get(i, 0) for i in range(1, k + 1)])
        right.set(xlabel=f"distinct_k (of k={k})", ylabel="prompts", title="distinct_k")
    figure.tight_layout()
    plot_to(figure, path)


def write_reports(output_dir: Path, summary: dict, rows: list[dict]) -> None:
    """Writes summary.json, per_prompt.jsonl, the TensorBoard scalars and diversity.png."""
    atomic_write_text(output_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    atomic_write_text(output_dir / PER_PROMPT_FILE, "".join(json.dumps(row) + "\n" for row in rows))
    (output_dir / TENSORBOARD_DIR).mkdir(exist_ok=True)
    writer = metric_writers.create_default_writer(
        str(output_dir / TENSORBOARD_DIR), just_logging=False
    )
    writer.write_scalars(0, summary_scalars(summary))
    writer.flush()
    writer.close()
    plot(summary, rows, output_dir / PLOT_FILE)
