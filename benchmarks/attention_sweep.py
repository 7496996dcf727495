"""Sequence-length sweep of training memory and throughput: dense vs blockwise attention.

    python benchmarks/attention_sweep.py [--out=benchmarks/attention_sweep.json] [--only=small]

Each configuration runs `train_throughput.py --skip_hf` in its own process (peak RSS is per
process), back to back, so load on a shared machine reaches "before" (`--attention=dense
--remat=none`, the model's previous code path) and "after" alike. Configurations whose dense
step cannot fit in memory are compiled only: XLA's accounting of the compiled step
(`xla_temp_bytes`) says how much they would need. Results are appended to `--out` as they
finish; a markdown table is printed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags

_OUT = flags.DEFINE_string("out", "benchmarks/attention_sweep.json", "results file (JSON list)")
_ONLY = flags.DEFINE_string("only", "", "run only the configurations whose name contains this")

SMALL = dict(preset="small-20m", batch_size=1)
QWEN = dict(preset="qwen2.5-0.5b", batch_size=1)
SHORT = dict(warmup=1, steps=2, rounds=1)
TWO_ROUNDS = dict(warmup=1, steps=3, rounds=2)  # the throughput target: less noise
ONE_STEP = dict(warmup=0, steps=1, rounds=1)  # long runs: one timed step (compiled beforehand)

# (name, flags): most important first, so a cut-short sweep still answers the targets.
RUNS = [
    ("small T=2048 dense", dict(**SMALL, seq_len=2048, attention="dense", **TWO_ROUNDS)),
    ("small T=2048 blockwise", dict(**SMALL, seq_len=2048, attention="blockwise", **TWO_ROUNDS)),
    ("small T=32768 dense", dict(**SMALL, seq_len=32768, attention="dense", compile_only=True)),
    ("small T=32768 blockwise remat=full", dict(**SMALL, seq_len=32768, remat="full", **ONE_STEP)),
    ("small T=8192 dense", dict(**SMALL, seq_len=8192, attention="dense", compile_only=True)),
    ("small T=8192 blockwise", dict(**SMALL, seq_len=8192, attention="blockwise", **SHORT)),
    ("small T=8192 blockwise remat=full", dict(**SMALL, seq_len=8192, remat="full", **SHORT)),
    ("small T=512 dense", dict(**SMALL, seq_len=512, attention="dense", **SHORT)),
    ("small T=512 blockwise", dict(**SMALL, seq_len=512, attention="blockwise", **SHORT)),
    ("qwen T=2048 dense", dict(**QWEN, seq_len=2048, attention="dense", compile_only=True)),
    ("qwen T=2048 blockwise remat=full", dict(**QWEN, seq_len=2048, remat="full", **ONE_STEP)),
    ("qwen T=8192 dense", dict(**QWEN, seq_len=8192, attention="dense", compile_only=True)),
    ("qwen T=8192 blockwise remat=full", dict(**QWEN, seq_len=8192, remat="full", **ONE_STEP)),
    ("small T=2048 blockwise remat=full", dict(**SMALL, seq_len=2048, remat="full", **SHORT)),
]


def run_one(name: str, options: dict) -> dict:
    """Runs train_throughput.py with `options` in a fresh process; its results, or the error."""
    script = os.path.join(os.path.dirname(__file__), "train_throughput.py")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        args = [sys.executable, script, "--skip_hf", f"--json_out={out}"]
        args += [f"--{k}" if v is True else f"--{k}={v}" for k, v in options.items()]
        start = time.time()
        proc = subprocess.run(args, capture_output=True, text=True)
        record = {"name": name, "options": options, "wall_seconds": time.time() - start}
        if proc.returncode == 0:
            with open(out) as f:
                record.update(json.load(f))
        else:
            record["error"] = (proc.stderr or proc.stdout)[-2000:]
    return record


def gib(value) -> str:
    return "—" if value is None else f"{value / 2**30:.2f}"


def table(records: list[dict]) -> str:
    lines = [
        "| run | attention | remat | peak memory GiB | XLA temp GiB | tokens/s | MFU |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in records:
        tps, mfu = r.get("reasonrl_tokens_per_s"), r.get("mfu")
        speed = "failed" if "error" in r else "—" if tps is None else f"{tps:.1f}"
        lines.append(
            f"| {r['name']} | {r.get('attention', '—')} | {r.get('remat', '—')} | "
            f"{gib(r.get('peak_memory_bytes'))} | {gib(r.get('xla_temp_bytes'))} | {speed} | "
            f"{'—' if mfu is None else f'{mfu:.3f}'} |"
        )
    return "\n".join(lines)


def main(argv):
    del argv
    records = []
    if os.path.exists(_OUT.value):
        with open(_OUT.value) as f:
            records = json.load(f)
    for name, options in RUNS:
        if _ONLY.value not in name:
            continue
        print(f"{time.strftime('%H:%M:%S')} {name}", flush=True)
        record = run_one(name, options)
        records = [r for r in records if r["name"] != name] + [record]
        with open(_OUT.value, "w") as f:
            json.dump(records, f, indent=2)
        print(table([record]).splitlines()[-1], flush=True)
    print(table(records))


if __name__ == "__main__":
    app.run(main)
