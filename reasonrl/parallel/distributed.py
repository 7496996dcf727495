"""Multi-host start-up: one call at the top of every binary, before JAX touches a device.

A multi-process job is described to `initialize_distributed` in one of these ways; the first
that applies wins:

1. Arguments: `initialize_distributed(coordinator_address, num_processes, process_id)`.
2. Environment: `JAX_COORDINATOR_ADDRESS=host:port JAX_NUM_PROCESSES=N JAX_PROCESS_ID=i`, the
   same on every process but the id (jax itself reads only the first of the three; this module
   reads the other two). `JAX_LOCAL_DEVICE_IDS` (jax's own) limits the devices a process uses.
3. `REASONRL_CLUSTER=<method>`: let jax read the cluster's own description, where `<method>`
   is one of jax's cluster detection methods: `gcetpu` (TPU VMs made with gcloud; what
   `launch/gcloud_tpu.py` sets), `gketpu` (TPUs on GKE; what `launch/xm_launch.py` sets),
   `slurm`, `ompi`, `mpi4py`, `k8s`.
4. Detected without being told: Slurm (`srun` with more than one task), Open MPI (`mpirun`
   with more than one rank; Open MPI 5, which jax does not detect, needs
   JAX_COORDINATOR_ADDRESS as well), TPUs on GKE (`TPU_WORKER_HOSTNAMES` listing more than one
   host), and a Cloud TPU VM whose slice has more than one worker.

Anything else (a laptop, one GPU, one TPU VM), or a description of one process, is left
untouched: `initialize_distributed` returns False without starting anything. A description
that is incomplete or inconsistent (`JAX_NUM_PROCESSES` without `JAX_PROCESS_ID`, an id out of
range, an unknown `REASONRL_CLUSTER`) raises `ValueError` naming the variable before jax starts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import jax
from absl import logging

__all__ = ["CLUSTER_METHODS", "ClusterSpec", "describe_cluster", "initialize_distributed"]

ENV_CLUSTER = "REASONRL_CLUSTER"
ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"
CLUSTER_METHODS = ("gcetpu", "gketpu", "slurm", "ompi", "mpi4py", "k8s")
_SLURM_VARS = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID")
_SLURM_VARS += ("SLURM_LOCALID",)  # what jax's Slurm detection needs, all of them


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """How this process joins its job: the `jax.distributed.initialize` arguments.

    Attributes:
      source: where the description came from (for the log and for errors).
      coordinator_address, num_processes, process_id: given to jax; None = jax finds it out
        through `cluster_detection_method`.
      cluster_detection_method: one of `CLUSTER_METHODS`, or None.
    """

    source: str
    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    cluster_detection_method: str | None = None


def _int(value: str, name: str, *, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} must be an integer") from None
    if number < minimum:
        raise ValueError(f"{name}={value!r} must be at least {minimum}")
    return number


def _size(environ: Mapping[str, str], name: str) -> int:
    value = environ.get(name, "").strip()
    return int(value) if value.isdigit() else 1


def _cloud_tpu_pod() -> bool:
    """Whether this is one worker of a multi-host Cloud TPU VM slice (read from its metadata).

    Uses jax's own (private) TPU VM detection; any failure reads as "no".
    """
    try:
        from jax._src import cloud_tpu_init
        from jax._src.clusters import cloud_tpu_cluster

        if not cloud_tpu_init.running_in_cloud_tpu_vm:
            return False
        gce = cloud_tpu_cluster.GceTpuCluster
        return gce.is_env_present() and len(gce._get_worker_list_in_slice()) > 1
    except Exception:  # noqa: BLE001 - a jax without these internals, or no metadata server
        return False


def _detected(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(method, what was seen) for a multi-process cluster jax can describe by itself."""
    if all(v in environ for v in _SLURM_VARS) and _size(environ, "SLURM_NTASKS") > 1:
        return "slurm", f"Slurm (SLURM_NTASKS={environ['SLURM_NTASKS']})"
    if "OMPI_MCA_orte_hnp_uri" in environ and _size(environ, "OMPI_COMM_WORLD_SIZE") > 1:
        return "ompi", f"Open MPI (OMPI_COMM_WORLD_SIZE={environ['OMPI_COMM_WORLD_SIZE']})"
    if "," in environ.get("TPU_WORKER_HOSTNAMES", environ.get("TPU_PROCESS_ADDRESSES", "")):
        return "gketpu", "TPUs on GKE (TPU_WORKER_HOSTNAMES)"
    return None


def describe_cluster(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    detect_cloud_tpu: bool = True,
) -> ClusterSpec | None:
    """The multi-process job this process belongs to, or None for a single-process run.

    Reads the arguments, then `environ` (default `os.environ`) as the module docstring lists.

    Raises:
      ValueError: naming the argument or variable, for an incomplete or inconsistent
        description.
    """
    environ = os.environ if environ is None else environ
    explicit = any(v is not None for v in (coordinator_address, num_processes, process_id))
    address = coordinator_address or environ.get(ENV_COORDINATOR) or None
    count_text = environ.get(ENV_NUM_PROCESSES, "").strip()
    index_text = environ.get(ENV_PROCESS_ID, "").strip()
    if num_processes is None and count_text:
        num_processes = _int(count_text, ENV_NUM_PROCESSES, minimum=1)
    if process_id is None and index_text:
        process_id = _int(index_text, ENV_PROCESS_ID, minimum=0)
    method = environ.get(ENV_CLUSTER, "").strip() or None
    if method is not None and method not in CLUSTER_METHODS:
        raise ValueError(f"{ENV_CLUSTER}={method!r} is not one of {', '.join(CLUSTER_METHODS)}")

    if num_processes is not None and process_id is not None:
        if not 0 <= process_id < num_processes:
            raise ValueError(
                f"process id {process_id} ({ENV_PROCESS_ID}) must be below the number of "
                f"processes {num_processes} ({ENV_NUM_PROCESSES})"
            )
        if num_processes == 1:
            return None
        if address is None:
            raise ValueError(
                f"{num_processes} processes need a coordinator: set {ENV_COORDINATOR}=host:port "
                "(process 0's host, a free port), the same on every process"
            )
        source = "arguments" if explicit else f"{ENV_COORDINATOR} (+ _NUM_PROCESSES, _PROCESS_ID)"
        return ClusterSpec(source, address, num_processes, process_id)

    detected = _detected(environ)
    if method is not None:
        detected = (method, f"{ENV_CLUSTER}={method}")
    elif detected is None and environ.get("OMPI_COMM_WORLD_SIZE") and not explicit:
        if _size(environ, "OMPI_COMM_WORLD_SIZE") > 1:  # Open MPI 5: no orte URI for jax
            if address is None:
                raise ValueError(
                    "Open MPI without OMPI_MCA_orte_hnp_uri (Open MPI 5): set "
                    f"{ENV_COORDINATOR}=host:port (rank 0's host, a free port) on every rank"
                )
            size = _size(environ, "OMPI_COMM_WORLD_SIZE")
            rank = _int(environ.get("OMPI_COMM_WORLD_RANK", ""), "OMPI_COMM_WORLD_RANK", minimum=0)
            if rank >= size:
                raise ValueError(f"OMPI_COMM_WORLD_RANK={rank} must be below {size}")
            return ClusterSpec("Open MPI 5 (OMPI_COMM_WORLD_SIZE, _RANK)", address, size, rank)
    if detected is None and detect_cloud_tpu and not explicit and _cloud_tpu_pod():
        detected = ("gcetpu", "a multi-host Cloud TPU VM slice")
    if detected is not None:
        method, seen = detected
        return ClusterSpec(seen, address, num_processes, process_id, method)

    if any(v is not None for v in (address, num_processes, process_id)):
        given = {
            "coordinator address": address,
            f"number of processes ({ENV_NUM_PROCESSES})": num_processes,
            f"process id ({ENV_PROCESS_ID})": process_id,
        }
        missing = [name for name, value in given.items() if value is None]
        raise ValueError(
            f"incomplete multi-process description: missing {', '.join(missing)}; give all of "
            f"{ENV_COORDINATOR}, {ENV_NUM_PROCESSES} and {ENV_PROCESS_ID} (or set "
            f"{ENV_CLUSTER} to let jax read the cluster's own description)"
        )
    return None


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
    """Starts `jax.distributed` if this process is one of several; returns whether it did.

    The job is described by the arguments or the environment (`describe_cluster`; the module
    docstring lists every way). A single-process run is left untouched.
    """
    spec = describe_cluster(coordinator_address, num_processes, process_id)
    if spec is None:
        return False
    logging.info("jax.distributed: starting from %s", spec.source)
    jax.distributed.initialize(
        coordinator_address=spec.coordinator_address,
        num_processes=spec.num_processes,
        process_id=spec.process_id,
        cluster_detection_method=spec.cluster_detection_method,
    )
    logging.info(
        "jax.distributed: process %d of %d, %d local / %d global devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )
    return True
