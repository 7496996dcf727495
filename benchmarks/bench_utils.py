"""What every benchmark script shares: naming the machine and reporting results."""

from __future__ import annotations

import json
import os
import platform


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
