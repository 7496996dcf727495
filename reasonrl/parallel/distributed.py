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

Moving data in a multi-process job (every helper is the plain single-process operation when
there is one process, and every process must call it, in the same order, with the same shapes):

* `put_global(host_tree, sharding)`: host arrays that every process holds in full -> global
  arrays (each process places only its own devices' slices).
* `fetch_global(tree)`: (global) arrays -> their full value as numpy on every process.
* `process_share(n)`: this process's contiguous slice of n rows (for work split by row).
* `allgather_objects(obj)`: every process's picklable `obj`, in process order, on every process;
  `broadcast_from_main(obj)`: process 0's `obj` on every process.
* `on_main_process(fn)`: `fn()` on process 0 alone (e.g. writing a file); its result, or the
  exception it raised, reaches every process, so that no process waits for a failed one.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

__all__ = [
    "CLUSTER_METHODS",
    "ClusterSpec",
    "allgather_objects",
    "broadcast_from_main",
    "describe_cluster",
    "fetch_global",
    "initialize_distributed",
    "is_main_process",
    "on_main_process",
    "process_share",
    "put_global",
]

T = TypeVar("T")

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


def is_main_process() -> bool:
    """Whether this is process 0 (the one that writes a job's files)."""
    return jax.process_index() == 0


def put_global(host_tree: Any, sharding: Any) -> Any:
    """Host arrays -> jax arrays in `sharding`, also when it spans several processes.

    Args:
      host_tree: a pytree of arrays (numpy or anything `np.asarray` takes), the FULL global
        value, the same on every process (a process that holds only its own rows wants
        `jax.make_array_from_process_local_data` instead).
      sharding: one `jax.sharding.Sharding` for every leaf, or a pytree of them matching
        `host_tree` (as `jax.device_put` takes).

    Returns:
      The tree of jax arrays, each of its leaf's global shape. With one process (or a sharding
      within this process's devices) this is `jax.device_put`; otherwise every process places
      the slices of its own devices, cut from its full copy.
    """
    if isinstance(sharding, jax.sharding.Sharding):
        return jax.tree.map(lambda leaf: _put_one(leaf, sharding), host_tree)
    return jax.tree.map(_put_one, host_tree, sharding)


def _put_one(leaf, sharding: jax.sharding.Sharding) -> jax.Array:
    if jax.process_count() == 1 or sharding.is_fully_addressable:
        return jax.device_put(leaf, sharding)
    value = np.asarray(leaf)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def fetch_global(tree: Any) -> Any:
    """The full value of every leaf of `tree` as numpy, on every process.

    A jax array spread over several processes' devices is gathered to all of them
    (`multihost_utils.process_allgather`, a collective: every process must call this with the
    same tree); any other leaf (fully addressable or replicated arrays, numpy, Python scalars)
    is `jax.device_get` as with one process.
    """

    def fetch(leaf):
        if (
            isinstance(leaf, jax.Array)
            and not leaf.is_fully_addressable
            and not leaf.is_fully_replicated
        ):
            return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
        return jax.device_get(leaf)

    return jax.tree.map(fetch, tree)


def process_share(n: int, *, index: int | None = None, count: int | None = None) -> slice:
    """This process's contiguous share of `n` rows: process i of P takes rows
    [i * ceil(n / P), (i + 1) * ceil(n / P)), clipped to n (the last shares may be short or
    empty). `index` / `count` default to `jax.process_index()` / `jax.process_count()`."""
    index = jax.process_index() if index is None else index
    count = jax.process_count() if count is None else count
    if not 0 <= index < count or n < 0:
        raise ValueError(f"process {index} of {count} has no share of {n} rows")
    size = -(-n // count)
    return slice(min(index * size, n), min((index + 1) * size, n))


def allgather_objects(obj: Any) -> list:
    """Every process's `obj` (picklable), in process order, on every process; `[obj]` with one
    process. A collective: every process must call it, in the same order.

    The objects travel pickled between the processes of one job (which run the same code and
    trust each other), as uint8 arrays padded to a power of two so that few shapes compile.
    """
    if jax.process_count() == 1:
        return [obj]
    data = np.frombuffer(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
    sizes = multihost_utils.process_allgather(np.array([data.size], np.int64))  # [P, 1]
    width = 1 << max(int(sizes.max()) - 1, 0).bit_length()
    padded = np.zeros((width,), np.uint8)
    padded[: data.size] = data
    gathered = multihost_utils.process_allgather(padded)  # [P, width]
    return [
        pickle.loads(gathered[i, : int(size)].tobytes())  # noqa: S301 - this job's own processes
        for i, size in enumerate(sizes[:, 0])
    ]


def broadcast_from_main(obj: Any) -> Any:
    """Process 0's `obj` (picklable) on every process (a collective; `obj` elsewhere is
    ignored)."""
    if jax.process_count() == 1:
        return obj
    return allgather_objects(obj if is_main_process() else None)[0]


class MainProcessError(RuntimeError):
    """What another process raises when process 0 failed with an exception that could not be
    sent (the message names it)."""


def on_main_process(fn: Callable[[], T]) -> T:
    """`fn()` on process 0 only; its (picklable) result on every process.

    If `fn` raises, process 0 re-raises its exception and every other process raises it too
    (a copy, or `MainProcessError` naming it when it cannot be pickled), so that no process
    is left waiting in a collective for one that failed. With one process: `fn()`.
    """
    if jax.process_count() == 1:
        return fn()
    outcome: tuple[str, Any] = ("ok", None)
    error = None
    if is_main_process():
        try:
            outcome = ("ok", fn())
        except Exception as caught:  # noqa: BLE001 - sent to the other processes, re-raised
            error = caught
            try:
                pickle.loads(pickle.dumps(caught))  # noqa: S301 - our own bytes
                outcome = ("error", caught)
            except Exception:  # noqa: BLE001 - an exception that does not pickle
                outcome = ("error", MainProcessError(f"process 0 failed: {caught!r}"))
    status, value = broadcast_from_main(outcome)
    if error is not None:
        raise error
    if status == "error":
        raise value
    return value
