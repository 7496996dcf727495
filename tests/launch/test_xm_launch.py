"""`launch/xm_launch.py`: the XManager job spec, built without xmanager or any service."""

import json
import shlex
import sys

import pytest

from launch import gcloud_tpu, xm_launch


def test_single_unit_on_four_hosts(monkeypatch):
    monkeypatch.setitem(sys.modules, "xmanager", None)  # building the spec must not import it
    spec = xm_launch.build_job_spec(
        "configs/demo.py",
        "/gcs/bucket/runs/demo/",
        "v5e-16",
        ["--config.stages.pretrain.train.steps=5"],
    )
    assert spec.experiment_title == "reasonrl-demo-v5e-16"
    assert spec.requirements == {"tpu_v5e": "4x4"}
    assert spec.topology.hosts == 4 and spec.module == "reasonrl.main"
    [unit] = spec.work_units
    assert unit.name == "main"
    assert unit.env == {"REASONRL_CLUSTER": "gketpu"}
    assert unit.argv() == [
        "python",
        "-m",
        "reasonrl.main",
        "--config=configs/demo.py",
        "--workdir=/gcs/bucket/runs/demo",
        "--config.stages.pretrain.train.steps=5",
    ]


def test_same_job_command_as_the_gcloud_launcher(capsys):
    spec = xm_launch.build_job_spec("configs/demo.py", "/gcs/b/r", "v4-32", ["--config.seed=1"])
    assert gcloud_tpu.main(
        ["run", "--name=p", "--zone=z", "--tpu=v4-32", "--config=configs/demo.py",
         "--workdir=/gcs/b/r", "--config.seed=1", "--job=demo", "--dry_run"]
    ) == 0  # fmt: skip
    remote = shlex.split(capsys.readouterr().out)[-1]
    job_flags = spec.work_units[0].argv()[3:]
    assert " ".join(job_flags) in remote


def test_single_host_needs_no_cluster_and_allows_a_local_workdir():
    spec = xm_launch.build_job_spec("configs/demo.py", "/tmp/runs/demo", "v5e-8")
    assert spec.requirements == {"tpu_v5e": "2x4"}
    assert spec.work_units[0].env == {}


def test_sweep_is_a_product_with_one_workdir_per_unit():
    spec = xm_launch.build_job_spec(
        "configs/demo.py",
        "/gcs/b/r",
        "v5p-8",
        ["--config.seed=3"],
        ["stages.sft.optimizer.learning_rate=1e-4,3e-4", "config.stages.sft.train.steps=10,20"],
        name="lr-steps",
    )
    assert spec.experiment_title == "lr-steps"
    assert [u.name for u in spec.work_units] == [
        "learning_rate=1e-4,steps=10",
        "learning_rate=1e-4,steps=20",
        "learning_rate=3e-4,steps=10",
        "learning_rate=3e-4,steps=20",
    ]
    unit = spec.work_units[1]
    assert unit.args == {
        "config": "configs/demo.py",
        "workdir": "/gcs/b/r/learning_rate=1e-4,steps=20",
        "config.seed": "3",
        "config.stages.sft.optimizer.learning_rate": "1e-4",
        "config.stages.sft.train.steps": "20",
    }
    assert len({u.args["workdir"] for u in spec.work_units}) == 4


def test_dry_run_prints_the_spec(capsys):
    argv = ["--config=configs/demo.py", "--workdir=/gcs/b/r", "--tpu=v5e-16", "--dry_run",
            "--sweep=seed=0,1", "--config.stages.sft.train.steps=3"]  # fmt: skip
    assert xm_launch.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["experiment_title"] == "reasonrl-demo-v5e-16"
    assert [u["args"]["config.seed"] for u in data["work_units"]] == ["0", "1"]
    assert data["work_units"][0]["argv"][-1] == "--config.seed=0"
    assert data["docker_instructions"][-1] == "RUN pip install --no-cache-dir -e '.[tpu]'"


def test_launch_without_xmanager_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "xmanager", None)  # import fails as if not installed
    spec = xm_launch.build_job_spec("configs/demo.py", "/gcs/b/r", "v5e-8")
    with pytest.raises(RuntimeError, match=r"pip install xmanager.*--dry_run"):
        xm_launch.launch(spec)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--tpu=v5e-3"], "--tpu='v5e-3' is not a known TPU slice"),
        (["--tpu=v5e-16", "--workdir=runs/x"], "--workdir=runs/x must be an absolute path"),
        (["--sweep=seed"], "--sweep='seed' must read KEY=V1,V2"),
        (["--sweep=seed="], "--sweep='seed=' must read KEY=V1,V2"),
        (["--sweep=seed=1,2", "--sweep=config.seed=3"], "config.seed is swept twice"),
        (["--sweep=seed=1,2", "--config.seed=0"], "--config.seed is both overridden and swept"),
        (["--steps=3"], "unknown flag '--steps=3'"),
        (["--name=my exp"], "--name='my exp'"),
        (["--config=configs/missing.py"], "--config=configs/missing.py: no such file"),
    ],
)
def test_bad_flags_are_named(capsys, argv, message):
    base = {"--config": "configs/demo.py", "--workdir": "/gcs/b/r", "--tpu": "v5e-8"}
    for arg in argv:
        base.pop(arg.split("=")[0], None)
    full = [f"{k}={v}" for k, v in base.items()] + argv + ["--dry_run"]
    assert xm_launch.main(full) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err


def test_requirements_are_valid_xmanager_requirements():
    """Where xmanager is installed: every slice's request is one XManager accepts, for the
    slice's chip count (xm core only; no service)."""
    xm = pytest.importorskip("xmanager.xm")
    from launch.topology import TOPOLOGIES

    for name in TOPOLOGIES:
        spec = xm_launch.build_job_spec("configs/demo.py", "/gcs/b/r", name)
        requirements = xm.JobRequirements(**spec.requirements)
        assert requirements.accelerator.name == spec.topology.xm_resource.upper(), name
        assert requirements.topology.chip_count == spec.topology.chips, name
