"""What every benchmark script shares: naming the machine and reporting results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> str:
    """E.g. "AMD EPYC, 2 CPUs, JAX device cpu" — recorded with every result."""
    import jax

    return f"{cpu_model()}, {os.cpu_count()} CPUs, JAX device {jax.devices()[0].device_kind}"


def report(results: dict, json_out: str = "") -> None:
    """Prints one aligned line per result and optionally writes them as JSON."""
    width = max(len(key) for key in results)
    for key, value in results.items():
        shown = f"{value:,.4g}" if isinstance(value, float) else str(value)
        print(f"{key:>{width}}: {shown}")
    if json_out:
        with open(json_out, "w") as f:
            json.dump(results, f, indent=2)


def run_recipe(config: str, workdir: Path, *overrides: str) -> float:
    """`python -m reasonrl.main --config=configs/<config>.py --workdir=<workdir> <overrides>` on
    one CPU device, as a user runs it; returns its wall time in seconds (a finished run in the
    workdir is reused: the job resumes)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("XLA_FLAGS", None)  # one CPU device, as a user runs it
    start = time.time()
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "reasonrl.main",
            f"--config={REPO / 'configs' / f'{config}.py'}",
            f"--workdir={workdir}",
            *overrides,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if process.returncode:
        raise RuntimeError(f"{config} in {workdir} failed:\n{process.stderr[-3000:]}")
    return time.time() - start
