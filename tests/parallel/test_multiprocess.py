"""Several JAX processes on this machine, talking through `jax.distributed`.

`run_processes` starts N processes the way a pod starts one per host: a localhost coordinator
on a free port and 4 virtual CPU devices each. The probe starts up through
`reasonrl.parallel.initialize_distributed` (each documented way of describing the job) and
sums a global array that each process holds half of, which needs the processes to talk.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEVICES_PER_PROCESS = 4
# Variables that would describe another cluster to a child; a child gets only the ones a test sets.
_CLUSTER_VARS = ("JAX_", "SLURM_", "OMPI_", "PMIX_", "TPU_", "MEGASCALE_", "REASONRL_CLUSTER")

PROBE = """
import json
from reasonrl.parallel import initialize_distributed
started = initialize_distributed()
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
mesh = Mesh(np.array(jax.devices()), ("d",))
n = jax.local_device_count()
local = np.arange(n, dtype=np.float32) + n * jax.process_index()
x = jax.make_array_from_process_local_data(NamedSharding(mesh, P("d")), local)
total = float(jax.jit(jnp.sum, out_shardings=NamedSharding(mesh, P()))(x))
print("RESULT " + json.dumps(dict(
    started=started, index=jax.process_index(), count=jax.process_count(),
    local=jax.local_device_count(), devices=jax.device_count(), total=total)), flush=True)
"""


def free_port() -> int:
    """A TCP port nothing listens on now (the coordinator binds it right after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(extra: Mapping[str, str], devices: int = DEVICES_PER_PROCESS) -> dict[str, str]:
    """This environment without any cluster description, CPU only, `devices` virtual devices,
    plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CLUSTER_VARS)}
    env.update(
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        PYTHONPATH=str(REPO_ROOT),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    env.update(extra)
    return env


def compile_cache_env() -> dict[str, str]:
    """Variables that give a child the test session's persistent JAX compilation cache (the
    directory tests/conftest.py uses), so that reruns skip most compiles."""
    directory = os.environ.get(
        "REASONRL_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "reasonrl", "jax")
    )
    return {
        "JAX_COMPILATION_CACHE_DIR": directory,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.5",
    }


def run_processes(
    num_processes: int,
    argv: Sequence[str],
    env_for: Callable[[int], Mapping[str, str]],
    *,
    timeout: float = 240,
    devices: int = DEVICES_PER_PROCESS,
) -> list[subprocess.CompletedProcess]:
    """Starts `argv` `num_processes` times at once (process i with `env_for(i)` added to a
    clean environment, `devices` CPU devices each) and waits for all; kills all if one hangs
    past `timeout` seconds. Returns their results in process order."""
    procs = [
        subprocess.Popen(
            list(argv),
            cwd=REPO_ROOT,
            env=child_env(env_for(i), devices),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(num_processes)
    ]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


def run_job_processes(
    num_processes: int, argv: Sequence[str], *, timeout: float, compile_cache: bool = True
) -> list[subprocess.CompletedProcess]:
    """`argv` as one job of `num_processes` processes x (8 / num_processes) CPU devices, started
    the documented way (`JAX_COORDINATOR_ADDRESS` + `JAX_NUM_PROCESSES` + `JAX_PROCESS_ID` on a
    free localhost port; nothing for one process), with the session's compilation cache."""
    port = free_port()

    def env(i: int) -> dict[str, str]:
        out = compile_cache_env() if compile_cache else {}
        if num_processes > 1:
            out.update(
                JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                JAX_NUM_PROCESSES=str(num_processes),
                JAX_PROCESS_ID=str(i),
            )
        return out

    return run_processes(num_processes, argv, env, timeout=timeout, devices=8 // num_processes)


def probe_results(results: Sequence[subprocess.CompletedProcess]) -> list[dict]:
    """Each process's RESULT line; fails showing the stderr of a process that failed."""
    parsed = []
    for i, result in enumerate(results):
        assert result.returncode == 0, f"process {i} failed:\n{result.stderr[-3000:]}"
        [line] = [x for x in result.stdout.splitlines() if x.startswith("RESULT ")]
        parsed.append(json.loads(line.removeprefix("RESULT ")))
    return parsed


def assert_one_job_of_two(parsed: Sequence[dict]) -> None:
    """Two processes, 4 devices each, 8 global devices, and a collective across all of them."""
    assert [p["index"] for p in parsed] == [0, 1]
    for p in parsed:
        assert p["started"] is True
        assert (p["count"], p["local"], p["devices"]) == (2, 4, 8)
        assert p["total"] == sum(range(8))  # 0..3 from process 0, 4..7 from process 1


def test_jax_environment_variables():
    """The issue's failing case: JAX_COORDINATOR_ADDRESS + JAX_NUM_PROCESSES + JAX_PROCESS_ID."""
    port = free_port()
    env = lambda i: {
        "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
        "JAX_NUM_PROCESSES": "2",
        "JAX_PROCESS_ID": str(i),
    }
    assert_one_job_of_two(probe_results(run_processes(2, [sys.executable, "-c", PROBE], env)))


def test_slurm_srun_environment():
    """What `srun --ntasks=2` sets, jax's Slurm detection reads (the port from
    JAX_COORDINATOR_PORT instead of one derived from the job id)."""
    port = free_port()
    env = lambda i: {
        "SLURM_JOB_ID": "4242",
        "SLURM_STEP_NODELIST": "localhost",
        "SLURM_NTASKS": "2",
        "SLURM_PROCID": str(i),
        "SLURM_LOCALID": str(i),
        "JAX_COORDINATOR_PORT": str(port),
    }
    assert_one_job_of_two(probe_results(run_processes(2, [sys.executable, "-c", PROBE], env)))


def test_open_mpi_5_with_a_coordinator():
    """Open MPI 5 (no OMPI_MCA_orte_hnp_uri, which jax needs): rank and size from Open MPI,
    the coordinator from JAX_COORDINATOR_ADDRESS."""
    port = free_port()
    env = lambda i: {
        "OMPI_COMM_WORLD_SIZE": "2",
        "OMPI_COMM_WORLD_RANK": str(i),
        "OMPI_COMM_WORLD_LOCAL_RANK": str(i),
        "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
    }
    assert_one_job_of_two(probe_results(run_processes(2, [sys.executable, "-c", PROBE], env)))


def test_explicit_arguments():
    port = free_port()
    script = PROBE.replace(
        "initialize_distributed()",
        f"initialize_distributed('127.0.0.1:{port}', 2, int(__import__('os').environ['RANK']))",
    )
    env = lambda i: {"RANK": str(i)}
    assert_one_job_of_two(probe_results(run_processes(2, [sys.executable, "-c", script], env)))


def test_one_process_is_left_alone():
    [result] = probe_results(
        run_processes(1, [sys.executable, "-c", PROBE], lambda i: {}, devices=8)
    )
    assert result == dict(started=False, index=0, count=1, local=8, devices=8, total=28.0)


def test_an_incomplete_description_fails_before_jax_starts():
    env = lambda i: {"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(i)}
    results = run_processes(2, [sys.executable, "-c", PROBE], env, timeout=120)
    for result in results:
        assert result.returncode != 0
        assert "need a coordinator: set JAX_COORDINATOR_ADDRESS=host:port" in result.stderr


def test_harness_kills_hung_processes():
    with pytest.raises(subprocess.TimeoutExpired):
        run_processes(2, [sys.executable, "-c", "import time; time.sleep(60)"], lambda i: {},
                      timeout=1)  # fmt: skip
