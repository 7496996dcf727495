"""configs/spectrum.py over several seeds: does spectrum tuning beat instruction tuning on
held-out tasks, whatever the seed (and on this machine)?

    python benchmarks/spectrum_seeds.py [--seeds=0,1,2 --workdir=/tmp/reasonrl_spectrum_seeds]

Runs the recipe as a user runs it (`python -m reasonrl.main`, one CPU device) once per seed,
with every stage's `train.seed` set to it, in `<workdir>/seed<S>` (a finished run there is
reused: the job resumes). Per seed and model (start, sft, spectrum): the headline metrics of
`<workdir>/seed<S>/evals/<model>/summary.json`; then their mean and spread, and the differences
spectrum - sft per seed. Writes `spectrum_seeds.json` and `spectrum_seeds.png` beside this
script (or --json_out); record the results in RESULTS.md. The notebook
notebooks/03_spectrum_tuning.ipynb (run by the slow tests) asserts margins every seed clears.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

from absl import app, flags
from bench_utils import REPO, cpu_model, run_recipe

MODELS = ("start", "sft", "spectrum")  # the recipe's evals
STAGES = ("pretrain", "sft", "spectrum")
METRICS = (
    "js_divergence",
    "coverage",
    "percent_valid",
    "unique_gens_pct",
    "yield",
    "loss_geq_1",
    "all_acc_geq_1",
    "ece",
)

_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "seeds to run")
_WORKDIR = flags.DEFINE_string(
    "workdir", "/tmp/reasonrl_spectrum_seeds", "one sub-directory per seed"
)
_JSON = flags.DEFINE_string(
    "json_out", str(REPO / "benchmarks" / "spectrum_seeds.json"), "results file"
)


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.mean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shown = ("js_divergence", "yield", "percent_valid", "loss_geq_1")
    figure, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.5))
    for ax, metric in zip(axes, shown):
        stats = [results["summary"][model][metric] for model in MODELS]
        ax.bar(
            MODELS,
            [s["mean"] for s in stats],
            yerr=np.array(
                [[s["mean"] - s["min"] for s in stats], [s["max"] - s["mean"] for s in stats]]
            ),
            capsize=4,
        )
        ax.set_title(metric)
    figure.suptitle(f"held-out spectrum evals, {len(results['seeds'])} seeds (bars: min-max)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv):
    del argv
    results: dict = {
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, 1 CPU device",
        "seeds": {},
    }
    for seed in map(int, _SEEDS.value):
        workdir = Path(_WORKDIR.value) / f"seed{seed}"
        seeds = [f"--config.stages.{stage}.train.seed={seed}" for stage in STAGES]
        seconds = run_recipe("spectrum", workdir, *seeds)
        per_model = {
            model: json.loads((workdir / "evals" / model / "summary.json").read_text())["metrics"]
            for model in MODELS
        }
        results["seeds"][seed] = {"wall_seconds": seconds, **per_model}
        print(f"seed {seed}: {seconds:.0f} s", json.dumps(per_model, indent=1), flush=True)
    runs = list(results["seeds"].values())
    results["summary"] = {
        model: {metric: _spread([run[model][metric] for run in runs]) for metric in METRICS}
        for model in MODELS
    }
    results["spectrum_minus_sft"] = {
        metric: _spread([run["spectrum"][metric] - run["sft"][metric] for run in runs])
        for metric in METRICS
    }
    out = Path(_JSON.value)
    out.write_text(json.dumps(results, indent=2) + "\n")
    _plot(results, out.with_suffix(".png"))
    print(json.dumps(results["summary"], indent=1))
    print("spectrum - sft:", json.dumps(results["spectrum_minus_sft"], indent=1))


if __name__ == "__main__":
    app.run(main)
