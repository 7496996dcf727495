"""configs/grpo.py over several seeds: does GRPO's gain survive the seed (and this machine)?

    python benchmarks/grpo_seeds.py [--seeds=0,1,2 --workdir=/tmp/reasonrl_grpo_seeds]

Runs the recipe as a user runs it (`python -m reasonrl.main`, one CPU device) once per seed, with
`stages.sft.train.seed` and `stages.rl.train.seed` both set to it, in `<workdir>/seed<S>` (a
finished run there is reused). Per seed: greedy eval accuracy at rollout step 0 and at the last
step, and the mean rollout reward over the first 10 and the last 20 rollout steps; then the mean
and spread (min, max, sample std) of both changes. tests/rl/test_grpo_learns.py asserts margins
that every seed recorded in RESULTS.md clears. Record results in RESULTS.md.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from absl import app, flags
from bench_utils import cpu_model, report, run_recipe

_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "seeds to run")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/reasonrl_grpo_seeds", "one sub-directory per seed")
_JSON = flags.DEFINE_string("json_out", "", "also write the results to this file")


def learning_summary(metrics_file: Path) -> dict[str, float]:
    """Greedy accuracy at the first and last eval, mean rollout reward of the first 10 and last
    20 rollout steps, from an rl stage's metrics.jsonl."""
    import numpy as np

    from reasonrl.rl.loop import read_rollout_metrics

    records = read_rollout_metrics(metrics_file)
    rewards = np.array([r["rollout/reward"] for s, r in records.items() if s >= 1])
    accuracy = {s: r["eval/accuracy"] for s, r in records.items() if "eval/accuracy" in r}
    return {
        "accuracy_start": accuracy[min(accuracy)],
        "accuracy_end": accuracy[max(accuracy)],
        "reward_first10": float(rewards[:10].mean()),
        "reward_last20": float(rewards[-20:].mean()),
    }


def main(argv):
    del argv
    import jax

    results: dict = {
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, 1 CPU device",
        "jax": jax.__version__,
    }
    gains = {"accuracy": [], "reward": []}
    for seed in map(int, _SEEDS.value):
        workdir = Path(_WORKDIR.value) / f"seed{seed}"
        wall = run_recipe(
            "grpo",
            workdir,
            f"--config.stages.sft.train.seed={seed}",
            f"--config.stages.rl.train.seed={seed}",
        )
        s = learning_summary(workdir / "rl" / "metrics.jsonl")
        gains["accuracy"].append(s["accuracy_end"] - s["accuracy_start"])
        gains["reward"].append(s["reward_last20"] - s["reward_first10"])
        results[f"seed {seed}"] = (
            f"greedy accuracy {s['accuracy_start']:.3f} -> {s['accuracy_end']:.3f} "
            f"({gains['accuracy'][-1]:+.3f}); rollout reward {s['reward_first10']:.3f} -> "
            f"{s['reward_last20']:.3f} ({gains['reward'][-1]:+.3f}); {wall:.0f} s"
        )
    for name, values in gains.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        results[f"{name} gain"] = (
            f"mean {statistics.mean(values):+.3f}, std {spread:.3f}, "
            f"min {min(values):+.3f}, max {max(values):+.3f}"
        )
    report(results, _JSON.value)


if __name__ == "__main__":
    app.run(main)
