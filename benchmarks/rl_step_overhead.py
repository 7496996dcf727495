"""GRPO step wall time vs its sampling + update time: is there an orchestration tax?

    python benchmarks/rl_step_overhead.py [--steps=12 --group_size=8 --max_new_tokens=32]

Runs the RL loop (reasonrl.rl.loop) of configs/grpo.py from a fresh model for `--steps`
rollout steps and reads the per-step phase times it logs: sampling (generate), reward (the
math grader), update (the mu optimizer steps, device work included) and the whole step.
Reports medians over the steps after `--warmup` (compilation) and the ratio
step / (sampling + update); the target (issue 6) is <= 1.3. Record results in RESULTS.md.
"""

from __future__ import annotations

import statistics
import tempfile

from absl import app, flags, logging
from bench_utils import machine_description, report

_STEPS = flags.DEFINE_integer("steps", 12, "rollout steps to run")
_WARMUP = flags.DEFINE_integer("warmup", 2, "first steps left out (compilation)")
_PROMPTS = flags.DEFINE_integer("batch_size", 8, "prompts per step")
_GROUP = flags.DEFINE_integer("group_size", 8, "samples per prompt")
_NEW = flags.DEFINE_integer("max_new_tokens", 32, "completion budget")
_MINIBATCHES = flags.DEFINE_integer("num_minibatches", 2, "updates per rollout")
_PRESET = flags.DEFINE_string("preset", "", "model preset (default: the recipe's tiny model)")
_JSON = flags.DEFINE_string("json_out", "", "also write the results to this file")


def main(argv):
    del argv
    from pathlib import Path

    logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint at INFO

    from reasonrl.job import run_job
    from reasonrl.paths import recipe
    from reasonrl.rl.loop import read_rollout_metrics

    config = recipe("grpo").get_config()
    rl = config.stages.rl
    del config.stages["sft"]
    rl.model.init_from = ""
    rl.model.preset = _PRESET.value or "tiny-qwen3"
    if _PRESET.value:
        rl.model.overrides = {}
    rl.rl.update(
        group_size=_GROUP.value,
        max_new_tokens=_NEW.value,
        num_minibatches=_MINIBATCHES.value,
        eval_size=0,
    )
    rl.train.update(
        steps=_STEPS.value,
        batch_size=_PROMPTS.value,
        seq_len=_NEW.value + 40,
        log_every=_STEPS.value,
        checkpoint_every=10_000,
        export_hf=False,
    )
    with tempfile.TemporaryDirectory() as workdir:
        run_job(config, workdir)
        records = list(read_rollout_metrics(Path(workdir) / "rl" / "metrics.jsonl").values())
    timed = records[_WARMUP.value :]
    median = lambda key: statistics.median(r[key] for r in timed)  # noqa: E731
    results = {
        "machine": machine_description(),
        "rollout rows per step": _PROMPTS.value * _GROUP.value,
        "timed steps": len(timed),
        "sampling s (median)": round(median("time/sample_s"), 4),
        "reward s (median)": round(median("time/reward_s"), 4),
        "update s (median)": round(median("time/update_s"), 4),
        "step s (median)": round(median("time/step_s"), 4),
        "step / (sampling + update)": round(median("time/overhead_ratio"), 3),
    }
    report(results, _JSON.value)


if __name__ == "__main__":
    app.run(main)
