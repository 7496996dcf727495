"""Cloud TPU slice shapes: what `--tpu=v5e-16` means in hosts, chips and runtime images.

One table serves both launchers (`launch/gcloud_tpu.py`, `launch/xm_launch.py`). A slice name
is `<generation>-<N>` as Cloud TPU spells it: for v2/v3/v4/v5p, N counts TensorCores (two per
chip); for v5e/v6e, N counts chips. Every chip is one JAX device (v4/v5p megacore chips too).
"""

from __future__ import annotations

import dataclasses

__all__ = ["TOPOLOGIES", "TpuTopology", "get_topology"]


@dataclasses.dataclass(frozen=True)
class TpuTopology:
    """One TPU slice.

    Attributes:
      name: the name the launchers take (`--tpu=`), e.g. `v5e-16`.
      accelerator_type: `gcloud ... --accelerator-type=` (v5e is `v5litepod-N` there).
      hosts: TPU VM workers (= JAX processes; `gcloud ... --worker=all` runs on each).
      chips_per_host: JAX devices per process.
      runtime_version: the TPU VM software image (`--version` / `--runtime-version`).
      xm_resource: the `xm.JobRequirements` keyword for this generation (XManager).
      xm_topology: the chip grid as XManager writes it (`'4x4'`).
    """

    name: str
    accelerator_type: str
    hosts: int
    chips_per_host: int
    runtime_version: str
    xm_resource: str
    xm_topology: str

    @property
    def chips(self) -> int:
        """JAX devices in the whole slice."""
        return self.hosts * self.chips_per_host

    @property
    def multi_host(self) -> bool:
        """Whether the slice spans several TPU VMs (then jax.distributed must start)."""
        return self.hosts > 1


_V4_RUNTIME = "tpu-ubuntu2204-base"
_V5E_RUNTIME = "v2-alpha-tpuv5-lite"
_V5P_RUNTIME = "v2-alpha-tpuv5"
_V6E_RUNTIME = "v2-alpha-tpuv6e"


def _table() -> dict[str, TpuTopology]:
    rows = [
        # name, accelerator type, hosts, chips/host, runtime, xm resource, xm topology
        ("v3-8", "v3-8", 1, 4, _V4_RUNTIME, "tpu_v3", "2x2"),
        ("v3-32", "v3-32", 4, 4, _V4_RUNTIME, "tpu_v3", "4x4"),
        ("v4-8", "v4-8", 1, 4, _V4_RUNTIME, "tpu_v4", "2x2x1"),
        ("v4-16", "v4-16", 2, 4, _V4_RUNTIME, "tpu_v4", "2x2x2"),
        ("v4-32", "v4-32", 4, 4, _V4_RUNTIME, "tpu_v4", "2x2x4"),
        ("v4-64", "v4-64", 8, 4, _V4_RUNTIME, "tpu_v4", "2x4x4"),
        ("v4-128", "v4-128", 16, 4, _V4_RUNTIME, "tpu_v4", "4x4x4"),
        ("v5e-1", "v5litepod-1", 1, 1, _V5E_RUNTIME, "tpu_v5e", "1x1"),
        ("v5e-4", "v5litepod-4", 1, 4, _V5E_RUNTIME, "tpu_v5e", "2x2"),
        ("v5e-8", "v5litepod-8", 1, 8, _V5E_RUNTIME, "tpu_v5e", "2x4"),
        ("v5e-16", "v5litepod-16", 4, 4, _V5E_RUNTIME, "tpu_v5e", "4x4"),
        ("v5e-32", "v5litepod-32", 8, 4, _V5E_RUNTIME, "tpu_v5e", "4x8"),
        ("v5e-64", "v5litepod-64", 16, 4, _V5E_RUNTIME, "tpu_v5e", "8x8"),
        ("v5e-128", "v5litepod-128", 32, 4, _V5E_RUNTIME, "tpu_v5e", "8x16"),
        ("v5e-256", "v5litepod-256", 64, 4, _V5E_RUNTIME, "tpu_v5e", "16x16"),
        ("v5p-8", "v5p-8", 1, 4, _V5P_RUNTIME, "tpu_v5p", "2x2x1"),
        ("v5p-16", "v5p-16", 2, 4, _V5P_RUNTIME, "tpu_v5p", "2x2x2"),
        ("v5p-32", "v5p-32", 4, 4, _V5P_RUNTIME, "tpu_v5p", "2x2x4"),
        ("v5p-64", "v5p-64", 8, 4, _V5P_RUNTIME, "tpu_v5p", "2x4x4"),
        ("v5p-128", "v5p-128", 16, 4, _V5P_RUNTIME, "tpu_v5p", "4x4x4"),
        ("v6e-1", "v6e-1", 1, 1, _V6E_RUNTIME, "tpu_v6e", "1x1"),
        ("v6e-4", "v6e-4", 1, 4, _V6E_RUNTIME, "tpu_v6e", "2x2"),
        ("v6e-8", "v6e-8", 1, 8, _V6E_RUNTIME, "tpu_v6e", "2x4"),
        ("v6e-16", "v6e-16", 4, 4, _V6E_RUNTIME, "tpu_v6e", "4x4"),
        ("v6e-32", "v6e-32", 8, 4, _V6E_RUNTIME, "tpu_v6e", "4x8"),
        ("v6e-64", "v6e-64", 16, 4, _V6E_RUNTIME, "tpu_v6e", "8x8"),
        ("v6e-256", "v6e-256", 64, 4, _V6E_RUNTIME, "tpu_v6e", "16x16"),
    ]
    return {row[0]: TpuTopology(*row) for row in rows}


TOPOLOGIES: dict[str, TpuTopology] = _table()
_ALIASES = {t.accelerator_type: t.name for t in TOPOLOGIES.values()}  # v5litepod-16 -> v5e-16


def get_topology(tpu: str, *, flag: str = "--tpu") -> TpuTopology:
    """The slice named `tpu` (`v5e-16`, or gcloud's `v5litepod-16`).

    Raises:
      ValueError: naming `flag` and the known slices, for a name not in the table.
    """
    key = (tpu or "").strip().lower()
    key = _ALIASES.get(key, key)
    if key not in TOPOLOGIES:
        raise ValueError(
            f"{flag}={tpu!r} is not a known TPU slice; known: {', '.join(TOPOLOGIES)} "
            "(add a row to launch/topology.py for another one)"
        )
    return TOPOLOGIES[key]
