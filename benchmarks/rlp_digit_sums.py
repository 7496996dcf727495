r"""RLP against continued next-token pretraining at equal FLOPs, on the digit-sums text.

For each seed: run the `configs/rlp.py` recipe (pretrain, midtrain, then RLP on plain held-out
text), read the RLP stage's cumulative FLOPs (`rlp/flops`), continue the model RLP started from
(the midtrain export) with next-token prediction on the same text for the same FLOPs
(`reasonrl.models.flops`), and measure the three models (start, +RLP, +NTP) on the held-out
test problems:

  no-think NLL     −log p(answer | "47361=")                   (what NTP trains)
  think NLL        −log p(answer | "47361=<think>c</think>")   c greedy / sampled at T = 0.7
  compute rate     the fraction of thoughts that are the running sums ("+..." and correct)
  think accuracy   argmax of p(answer | question, greedy thought) is the answer

  python benchmarks/rlp_digit_sums.py --workdir=/tmp/rlp_bench --seeds=0,1,2 \
      --json_out=benchmarks/rlp_digit_sums.json --png_out=benchmarks/rlp_digit_sums.png

Results, with the machine, go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
from absl import app, flags

from reasonrl import data as data_lib
from reasonrl import models
from reasonrl.models.flops import train_flops
from reasonrl.paths import asset
from reasonrl.rlp.loop import read_rlp_metrics
from reasonrl.sampling.generate import generate
from reasonrl.synthetic.digit_sums import THOUGHT_CLOSE, THOUGHT_OPEN, running_sums

_WORKDIR = flags.DEFINE_string("workdir", "/tmp/rlp_digit_sums", "runs go here")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "train.seed of each run")
_PROBLEMS = flags.DEFINE_integer("problems", 500, "held-out test problems measured")
_JSON = flags.DEFINE_string("json_out", "", "write the results here")
_PNG = flags.DEFINE_string("png_out", "", "draw the info-gain curves and NLLs here")

RECIPE = Path(__file__).resolve().parent.parent / "configs" / "rlp.py"


def run_job(config_file: Path, workdir: Path, overrides: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "reasonrl.main",
            f"--config={config_file}",
            f"--workdir={workdir}",
            *overrides,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def next_token_steps(workdir: Path, flops: float) -> tuple[int, float]:
    """NTP steps (of the recipe's midtrain batch shape) whose FLOPs match `flops`."""
    from reasonrl.configs import rlp as recipe

    midtrain = recipe.get_config().stages.midtrain
    config, _ = models.load_hf_checkpoint(workdir / "midtrain" / "export")
    per_step = train_flops(config, midtrain.train.batch_size, midtrain.train.seq_len)
    return max(1, round(flops / per_step)), per_step


def _next_logprobs(config, params, sequences: list[list[int]]) -> np.ndarray:
    """float [N, V] log p(next token) after each sequence."""
    width = max(map(len, sequences))
    tokens = np.array([s + [0] * (width - len(s)) for s in sequences], np.int32)
    logits = np.asarray(models.forward(config, params, tokens), np.float32)
    last = logits[np.arange(len(sequences)), [len(s) - 1 for s in sequences]]
    return last - np.logaddexp.reduce(last, axis=-1, keepdims=True)


def measure(export: Path, problems: list[dict]) -> dict[str, float]:
    config, params = models.load_hf_checkpoint(export)
    tokenizer = data_lib.load_tokenizer(str(export))
    prompts = [tokenizer.encode(p["question"], add_bos=True) for p in problems]
    answers = np.array([tokenizer.encode(p["answer"])[0] for p in problems])
    rows = np.arange(len(problems))
    no_think = _next_logprobs(config, params, prompts)
    out = {"no_think_nll": float(-no_think[rows, answers].mean())}
    open_id, close_id = tokenizer.encode(THOUGHT_OPEN)[0], tokenizer.encode(THOUGHT_CLOSE)[0]
    for name, temperature in (("greedy", 0.0), ("sampled", 0.7)):
        generated = generate(
            config,
            params,
            [p + [open_id] for p in prompts],
            max_new_tokens=12,
            rng=jax.random.key(0),
            temperature=temperature,
            stop_tokens=(close_id,),
            pad_id=tokenizer.pad_id,
        )
        sequences, computes = [], []
        for i, prompt in enumerate(prompts):
            thought = [int(t) for t in generated.tokens[i, : generated.lengths[i]]]
            if not thought or thought[-1] != close_id:
                thought.append(close_id)
            digits = [int(c) for c in problems[i]["question"][:-1]]
            expected = "+" + "".join(str(int(s)) for s in running_sums(np.array(digits), 3))
            computes.append(tokenizer.decode(thought[:-1]) == expected)
            sequences.append(prompt + [open_id] + thought)
        think = _next_logprobs(config, params, sequences)
        out[f"{name}_think_nll"] = float(-think[rows, answers].mean())
        out[f"{name}_compute_rate"] = float(np.mean(computes))
        out[f"{name}_think_accuracy"] = float(np.mean(think.argmax(-1) == answers))
    return out


def main(argv):
    del argv
    root = Path(_WORKDIR.value)
    with open(asset("synthetic", "digit_sums", "test.jsonl")) as f:
        problems = [json.loads(line) for line in f][: _PROBLEMS.value]
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {platform.platform()}",
        "runs": {},
    }
    for seed in _SEEDS.value:
        workdir = root / f"seed{seed}"
        seeds = [
            f"--config.stages.{stage}.train.seed={seed}"
            for stage in ("pretrain", "midtrain", "rlp")
        ]
        seconds = run_job(RECIPE, workdir, seeds)
        records = read_rlp_metrics(workdir / "rlp" / "metrics.jsonl")
        gains = [r["rlp/info_gain"] for r in records.values() if "rlp/info_gain" in r]
        flops = max(r.get("rlp/flops", 0.0) for r in records.values())
        steps, per_step = next_token_steps(workdir, flops)
        ntp_dir = root / f"seed{seed}_ntp"
        ntp_seconds = run_job(
            Path(__file__).resolve().parent / "rlp_ntp_baseline.py",
            ntp_dir,
            [
                f"--config.tokenizer.path={workdir / 'tokenizer' / 'tokenizer.model'}",
                f"--config.stages.ntp.model.hf_checkpoint={workdir / 'midtrain' / 'export'}",
                f"--config.stages.ntp.train.steps={steps}",
                f"--config.stages.ntp.train.seed={seed}",
            ],
        )
        fifth = max(1, len(gains) // 5)
        results["runs"][seed] = {
            "recipe_seconds": seconds,
            "ntp_seconds": ntp_seconds,
            "rlp_flops": flops,
            "ntp_steps": steps,
            "ntp_flops": steps * per_step,
            "info_gain": gains,
            "info_gain_first_fifth": float(np.mean(gains[:fifth])),
            "info_gain_last_fifth": float(np.mean(gains[-fifth:])),
            "start": measure(workdir / "midtrain" / "export", problems),
            "rlp": measure(workdir / "rlp" / "export", problems),
            "ntp": measure(ntp_dir / "ntp" / "export", problems),
        }
        print(json.dumps({k: v for k, v in results["runs"][seed].items() if k != "info_gain"}))
    if _JSON.value:
        Path(_JSON.value).write_text(json.dumps(results, indent=1) + "\n")
    if _PNG.value:
        plot(results, _PNG.value)


def plot(results: dict, png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (curve, bars) = plt.subplots(1, 2, figsize=(10, 3.6))
    for seed, run in results["runs"].items():
        gains = np.asarray(run["info_gain"])
        window = min(10, len(gains))
        smooth = np.convolve(gains, np.ones(window) / window, mode="valid")
        curve.plot(np.arange(window, len(gains) + 1), smooth, label=f"seed {seed}")
    curve.axhline(0.0, color="black", linewidth=0.5)
    curve.set(title="rlp/info_gain (10-step average)", xlabel="RLP step", ylabel="nats")
    curve.legend()
    models_ = ("start", "ntp", "rlp")
    keys = ("no_think_nll", "greedy_think_nll")
    width = 0.35
    for offset, key in enumerate(keys):
        values = [[run[m][key] for run in results["runs"].values()] for m in models_]
        bars.bar(
            np.arange(len(models_)) + offset * width,
            [np.mean(v) for v in values],
            width,
            yerr=[np.std(v) for v in values],
            label=key.replace("_", " "),
        )
    bars.set_xticks(
        np.arange(len(models_)) + width / 2, ["start (midtrain)", "+NTP (same FLOPs)", "+RLP"]
    )
    bars.set(title="held-out answer NLL (nats, mean ± sd over seeds)")
    bars.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    app.run(main)
