"""Multi-host start-up: one call at the top of every binary, before JAX touches a device."""

from __future__ import annotations

import os

import jax
from absl import logging


def _looks_multi_process() -> bool:
    """True when the environment describes one process of a multi-process job."""
    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        return True
    if "," in os.environ.get("TPU_WORKER_HOSTNAMES", ""):
        return True
    for size_var in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"):
        if int(os.environ.get(size_var, "1") or 1) > 1:
            return True
    return False


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
    """Starts `jax.distributed` if this process is one of several; returns whether it did.

    With no arguments the cluster is detected from the environment (Cloud TPU pods, SLURM,
    Open MPI, or JAX_COORDINATOR_ADDRESS + JAX_NUM_PROCESSES + JAX_PROCESS_ID). A single-process
    run (a laptop, one GPU, one TPU VM) is left untouched.
    """
    explicit = any(v is not None for v in (coordinator_address, num_processes, process_id))
    if not explicit and not _looks_multi_process():
        return False
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )
    logging.info(
        "jax.distributed: process %d of %d, %d local / %d global devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )
    return True
