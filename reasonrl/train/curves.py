"""Per-loop-step records from metrics.jsonl and the learning-curve PNG the rl and rlp loops draw.

A loop's step-end records carry its step under a key of their own ("rollout/step", "rlp/step");
`read_step_records` gathers them by that step and `plot_step_curve` draws one per-step series
(raw and a 10-step moving average) with an eval series as markers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from reasonrl.workdir import new_figure


def read_step_records(metrics_file: str | Path, step_key: str) -> dict[int, dict[str, float]]:
    """loop step -> the values of the records carrying `step_key` at that step, merged in file
    order (a resumed run's repeated steps keep their last value)."""
    out: dict[int, dict[str, float]] = {}
    with open(metrics_file) as f:
        for line in f:
            record = json.loads(line)
            if step_key in record:
                out.setdefault(int(record[step_key]), {}).update(record)
    return dict(sorted(out.items()))


def plot_step_curve(
    records: dict[int, dict[str, float]],
    png: str | Path,
    *,
    series: tuple[str, str],
    evals: tuple[str, str],
    title: str,
    xlabel: str,
    ylabel: str | None = None,
    zero_line: bool = False,
) -> Path:
    """Draws records[step][series[0]] per step (raw, faint, and a 10-step moving average) and
    records[step][evals[0]] as markers; (key, label) pairs. Steps without a key are skipped."""
    fig = new_figure(figsize=(6, 3.5))
    ax = fig.subplots()
    points = [(s, r[series[0]]) for s, r in records.items() if series[0] in r]
    if points:
        steps, values = (np.asarray(x) for x in zip(*points))
        ax.plot(steps, values, color="tab:blue", alpha=0.3, label=series[1])
        window = min(10, len(values))
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, color="tab:blue", label=f"  {window}-step average")
    marks = [(s, r[evals[0]]) for s, r in records.items() if evals[0] in r]
    if marks:
        ax.plot(*zip(*marks), color="tab:green", marker="o", label=evals[1])
    if zero_line:
        ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_title(f"{title} ({max(records, default=0)} steps)")
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # nothing logged yet: no legend
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    return Path(png)
