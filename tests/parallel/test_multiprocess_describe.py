"""`describe_cluster`: every documented way of describing a multi-process job, read from an
environment given as a dict (no process is started here; test_multiprocess.py starts them)."""

import pytest

from reasonrl.parallel.distributed import ClusterSpec, describe_cluster


def describe(env, *args):
    return describe_cluster(*args, environ=env, detect_cloud_tpu=False)


def test_nothing_is_one_process():
    assert describe({}) is None
    assert describe({"SLURM_NTASKS": "1", "OMPI_COMM_WORLD_SIZE": "1"}) is None
    assert describe({"TPU_WORKER_HOSTNAMES": "localhost"}) is None  # a one-host TPU slice
    assert describe({"JAX_NUM_PROCESSES": "1", "JAX_PROCESS_ID": "0"}) is None


def test_jax_variables():
    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4"}
    spec = describe({**env, "JAX_PROCESS_ID": "3"})
    assert (spec.coordinator_address, spec.num_processes, spec.process_id) == (
        "10.0.0.1:1234",
        4,
        3,
    )
    assert spec.cluster_detection_method is None


def test_arguments_win_over_the_environment():
    env = {"JAX_COORDINATOR_ADDRESS": "a:1", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
    assert describe(env, "b:2", 2, 1) == ClusterSpec("arguments", "b:2", 2, 1)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"JAX_COORDINATOR_ADDRESS": "a:1"}, "missing number of processes (JAX_NUM_PROCESSES)"),
        ({"JAX_COORDINATOR_ADDRESS": "a:1", "JAX_NUM_PROCESSES": "2"}, "(JAX_PROCESS_ID)"),
        ({"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"}, "set JAX_COORDINATOR_ADDRESS"),
        ({"JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"}, "JAX_NUM_PROCESSES='two' must be"),
        ({"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"}, "process id 2 (JAX_PROCESS_ID) must"),
        ({"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "-1"}, "JAX_PROCESS_ID='-1' must be at"),
        ({"REASONRL_CLUSTER": "borg"}, "REASONRL_CLUSTER='borg' is not one of gcetpu"),
        ({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"}, "Open MPI 5"),
        ({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "2",
          "JAX_COORDINATOR_ADDRESS": "h:1"}, "OMPI_COMM_WORLD_RANK=2 must be below 2"),
    ],
)  # fmt: skip
def test_incomplete_descriptions_name_the_variable(env, message):
    with pytest.raises(ValueError) as error:
        describe(env)
    assert message in str(error.value)


def test_cluster_method_variable():
    spec = describe({"REASONRL_CLUSTER": "gcetpu"})
    assert spec.cluster_detection_method == "gcetpu" and spec.num_processes is None
    # A coordinator override travels with it (jax fills the rest from the cluster).
    spec = describe({"REASONRL_CLUSTER": "slurm", "JAX_COORDINATOR_ADDRESS": "h:9"})
    assert (spec.cluster_detection_method, spec.coordinator_address) == ("slurm", "h:9")


def test_detected_clusters():
    slurm = {
        "SLURM_JOB_ID": "1",
        "SLURM_STEP_NODELIST": "n[1-2]",
        "SLURM_NTASKS": "2",
        "SLURM_PROCID": "1",
        "SLURM_LOCALID": "0",
    }
    assert describe(slurm).cluster_detection_method == "slurm"
    # An sbatch script outside srun has no step: one process, not a broken start.
    assert describe({k: v for k, v in slurm.items() if k != "SLURM_STEP_NODELIST"}) is None
    ompi = {"OMPI_MCA_orte_hnp_uri": "1.0;tcp://10.0.0.1:3", "OMPI_COMM_WORLD_SIZE": "2"}
    assert describe(ompi).cluster_detection_method == "ompi"
    gke = {"TPU_WORKER_HOSTNAMES": "h0,h1,h2,h3", "TPU_WORKER_ID": "2"}
    assert describe(gke).cluster_detection_method == "gketpu"


def test_open_mpi_5_takes_rank_and_size_from_open_mpi():
    env = {
        "OMPI_COMM_WORLD_SIZE": "4",
        "OMPI_COMM_WORLD_RANK": "2",
        "JAX_COORDINATOR_ADDRESS": "h:1",
    }
    spec = describe(env)
    assert (spec.coordinator_address, spec.num_processes, spec.process_id) == ("h:1", 4, 2)


def test_cloud_tpu_detection_is_off_the_tpu():
    # On this machine jax runs on CPU: no TPU VM metadata is read, and nothing is detected.
    assert describe_cluster(environ={}) is None


@pytest.mark.parametrize("workers, expected", [(["w0", "w1"], "gcetpu"), (["w0"], None)])
def test_cloud_tpu_vm_slice_is_detected_from_its_metadata(monkeypatch, workers, expected):
    from jax._src import cloud_tpu_init
    from jax._src.clusters import cloud_tpu_cluster

    gce = cloud_tpu_cluster.GceTpuCluster
    monkeypatch.setattr(cloud_tpu_init, "running_in_cloud_tpu_vm", True)
    monkeypatch.setattr(gce, "is_env_present", classmethod(lambda cls: True))
    monkeypatch.setattr(gce, "_get_worker_list_in_slice", staticmethod(lambda: workers))
    spec = describe_cluster(environ={})
    assert (spec and spec.cluster_detection_method) == expected
