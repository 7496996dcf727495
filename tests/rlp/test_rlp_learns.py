"""RLP learns: configs/rlp.py (pretrain, midtrain, then RLP on plain held-out digit-sum text),
run as a user runs it with a shorter RLP stage, raises the information gain of its thoughts."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reasonrl.rlp.loop import CURVE_FILE, read_rlp_metrics

REPO = Path(__file__).resolve().parents[2]
RLP_STEPS = 50
# Margins that every seed cleared (benchmarks/RESULTS.md, "Learning: RLP on digit sums";
# benchmarks/rlp_digit_sums.py on the 2-vCPU AMD EPYC box, one CPU device; the first 50 steps
# of those 100-step runs are this run exactly: the learning rate is constant).
MIN_GAIN_RISE = 0.5  # rlp/info_gain, last fifth minus first fifth (seeds: >= 0.903)
MIN_FINAL_GAIN = 0.5  # rlp/info_gain, mean of the last fifth, nats (seeds: >= 1.039)
MIN_EVAL_RISE = 0.5  # eval/thought_gain at the last step minus step 0 (seeds: >= 0.914)


@pytest.mark.slow
def test_rlp_recipe_raises_information_gain(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("XLA_FLAGS", None)  # one CPU device, as `python -m reasonrl.main` runs for a user
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "reasonrl.main",
            f"--config={REPO / 'configs' / 'rlp.py'}",
            f"--workdir={tmp_path}",
            f"--config.stages.rlp.train.steps={RLP_STEPS}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    records = read_rlp_metrics(tmp_path / "rlp" / "metrics.jsonl")
    gains = np.array([records[s]["rlp/info_gain"] for s in range(1, RLP_STEPS + 1)])
    fifth = RLP_STEPS // 5
    first, last = gains[:fifth].mean(), gains[-fifth:].mean()
    evals = {s: r["eval/thought_gain"] for s, r in records.items() if "eval/thought_gain" in r}
    print(f"rlp/info_gain {first:.3f} -> {last:.3f}; eval/thought_gain {evals}")
    assert last > first + MIN_GAIN_RISE and last > MIN_FINAL_GAIN, (first, last)
    assert evals[RLP_STEPS] > evals[0] + MIN_EVAL_RISE, evals
    assert (tmp_path / "rlp" / CURVE_FILE).stat().st_size > 10_000
