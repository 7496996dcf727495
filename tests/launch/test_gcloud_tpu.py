"""`launch/gcloud_tpu.py`: the exact commands its dry runs print, and its flag errors."""

import os
import shlex
import stat
import subprocess
import sys
import time

import pytest

from launch import gcloud_tpu
from launch.job_command import REPO_ROOT

SSH = "gcloud compute tpus tpu-vm ssh pod --zone=us-west4-a"


def dry_run(capsys, *argv):
    """Lines the dry run prints; fails if it would run anything."""
    assert gcloud_tpu.main([*argv, "--name=pod", "--zone=us-west4-a", "--dry_run"]) == 0
    return capsys.readouterr().out.splitlines()


@pytest.fixture(autouse=True)
def _no_subprocess(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a dry run ran {args}")

    monkeypatch.setattr(gcloud_tpu, "_execute", refuse)


def run_line(tpu, env_prefix, workdir, extra=""):
    job = (
        f"{env_prefix}nohup .venv/bin/python -m reasonrl.main --config=configs/demo.py "
        f"--workdir={workdir}{extra}"
    )
    remote = (
        "mkdir -p $HOME/reasonrl-logs && cd $HOME/reasonrl && "
        f"({job} > $HOME/reasonrl-logs/demo.log 2>&1 < /dev/null "
        "& echo $! > $HOME/reasonrl-logs/demo.pid)"
    )
    return f"{SSH} --worker=all {shlex.quote('--command=' + remote)}"


def test_run_single_host_v5e_8(capsys):
    lines = dry_run(
        capsys, "run", "--tpu=v5e-8", "--config=configs/demo.py", "--workdir=/gcs/bucket/runs/a"
    )
    # One host: no cluster to describe, one command for the one worker.
    assert lines == [run_line("v5e-8", "", "/gcs/bucket/runs/a")]


@pytest.mark.parametrize("tpu", ["v5e-16", "v4-32"])
def test_run_four_hosts_is_one_command_on_every_worker(capsys, tpu):
    lines = dry_run(
        capsys,
        "run",
        f"--tpu={tpu}",
        "--config=configs/demo.py",
        "--workdir=/gcs/bucket/runs/a/",
        "--config.stages.pretrain.train.steps=5",
        "--config.stages.sft.optimizer.learning_rate=5e-4",
    )
    overrides = (
        " --config.stages.pretrain.train.steps=5 --config.stages.sft.optimizer.learning_rate=5e-4"
    )
    assert lines == [run_line(tpu, "REASONRL_CLUSTER=gcetpu ", "/gcs/bucket/runs/a", overrides)]
    argv = shlex.split(lines[0])
    assert argv.count("--worker=all") == 1 and not any(a.startswith("--worker=0") for a in argv)


@pytest.mark.parametrize("tpu, env", [("v5e-8", ""), ("v5e-16", "REASONRL_CLUSTER=gcetpu ")])
def test_eval_runs_the_binary_on_every_worker(capsys, tpu, env):
    """`eval`: the same `python -m evals.math500 ...` line on every worker, the flags after the
    launcher's passed on verbatim, logged as eval-math500."""
    flags = ["--checkpoint=/gcs/b/runs/grpo/rl/export", "--output_dir=/tmp/m", "--limit=50"]
    lines = dry_run(capsys, "eval", f"--tpu={tpu}", "--benchmark=math500", *flags)
    job = f"{env}nohup .venv/bin/python -m evals.math500 {' '.join(flags)}"
    remote = (
        "mkdir -p $HOME/reasonrl-logs && cd $HOME/reasonrl && "
        f"({job} > $HOME/reasonrl-logs/eval-math500.log 2>&1 < /dev/null "
        "& echo $! > $HOME/reasonrl-logs/eval-math500.pid)"
    )
    assert lines == [f"{SSH} --worker=all {shlex.quote('--command=' + remote)}"]


def test_run_line_runs_in_a_shell(tmp_path):
    """The remote line, run by bash on a fake worker: the job gets its flags and environment,
    detached, with its output in the worker's log and its pid recorded."""
    python = tmp_path / "reasonrl" / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "cluster=$REASONRL_CLUSTER args=$*"\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    remote = gcloud_tpu.remote_run_command(
        "configs/demo.py", "/gcs/b/r", ["--config.x=a b"], {"REASONRL_CLUSTER": "gcetpu"}, "j"
    )
    subprocess.run(["bash", "-c", remote], check=True, env={**os.environ, "HOME": str(tmp_path)})
    log = tmp_path / "reasonrl-logs" / "j.log"
    for _ in range(100):
        if log.exists() and log.read_text():
            break
        time.sleep(0.05)
    assert log.read_text() == (
        "cluster=gcetpu args=-m reasonrl.main --config=configs/demo.py --workdir=/gcs/b/r "
        "--config.x=a b\n"
    )
    assert (tmp_path / "reasonrl-logs" / "j.pid").read_text().strip().isdigit()


def test_create(capsys):
    where = "--zone=us-west4-a"
    assert dry_run(capsys, "create", "--tpu=v5e-16") == [
        f"gcloud compute tpus tpu-vm create pod {where} --accelerator-type=v5litepod-16 "
        "--version=v2-alpha-tpuv5-lite"
    ]
    assert dry_run(capsys, "create", "--tpu=v4-32", "--spot", "--queued") == [
        f"gcloud compute tpus queued-resources create pod --node-id=pod {where} "
        "--accelerator-type=v4-32 --runtime-version=tpu-ubuntu2204-base --spot"
    ]


def test_install_copies_the_repository_to_every_worker(capsys):
    lines = dry_run(capsys, "install", "--project=proj")
    assert len(lines) == 3
    tar, scp, ssh = (shlex.split(line) for line in lines)
    assert tar[:3] == ["tar", "-czf", "/tmp/reasonrl-src-pod.tgz"]
    assert tar[-3:] == ["-C", str(REPO_ROOT), "."] and "--exclude=.venv" in tar
    assert scp == [
        *"gcloud compute tpus tpu-vm scp /tmp/reasonrl-src-pod.tgz pod:reasonrl-src.tgz".split(),
        "--zone=us-west4-a",
        "--project=proj",
        "--worker=all",
    ]
    assert ssh[:9] == [*SSH.split(), "--project=proj", "--worker=all"]
    assert ssh[9].startswith("--command=set -e;") and "pip install -q -e '.[tpu]'" in ssh[9]


def test_logs_are_read_worker_by_worker(capsys):
    lines = dry_run(capsys, "logs", "--tpu=v4-32", "--job=demo", "--lines=20")
    tail = "echo '== worker '$(hostname); tail -n 20 $HOME/reasonrl-logs/demo.log"
    assert lines == [f"{SSH} --worker={w} {shlex.quote('--command=' + tail)}" for w in range(4)]
    assert len(dry_run(capsys, "logs", "--tpu=v5e-8", "--job=demo")) == 1


def test_stop_and_delete(capsys):
    [stop] = dry_run(capsys, "stop", "--job=demo")
    assert (
        stop.startswith(f"{SSH} --worker=all ")
        and "kill $(cat $HOME/reasonrl-logs/demo.pid)" in stop
    )
    assert dry_run(capsys, "delete") == [
        "gcloud compute tpus tpu-vm delete pod --zone=us-west4-a --quiet"
    ]
    assert dry_run(capsys, "delete", "--queued") == [
        "gcloud compute tpus queued-resources delete pod --zone=us-west4-a --force --quiet"
    ]


def test_without_dry_run_every_command_runs_in_order(monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(gcloud_tpu, "_execute", ran.append)
    assert gcloud_tpu.main(["install", "--name=pod", "--zone=z"]) == 0
    assert [shlex.join(c) for c in ran] == capsys.readouterr().out.splitlines()
    assert len(ran) == 3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--tpu=v5e-17", "--config=configs/demo.py", "--workdir=/gcs/b/r"], "--tpu="),
        (["run", "--tpu=v5e-16", "--config=configs/demo.py", "--workdir=runs/r"],
         "--workdir=runs/r must be an absolute path on a filesystem every host mounts"),
        (["run", "--tpu=v5e-8", "--config=configs/demo.py", "--workdir=gs://b/r"],
         "--workdir=gs://b/r is a URL; the job writes through the local filesystem"),
        (["run", "--tpu=v5e-8", "--config=configs/nope.py", "--workdir=/gcs/b/r"],
         "--config=configs/nope.py: no such file"),
        (["run", "--tpu=v5e-8", "--config=/etc/hostname", "--workdir=/gcs/b/r"],
         "outside the repository"),
        (["run", "--tpu=v5e-8", "--config=configs/demo.py", "--workdir=/gcs/b/r", "--stepz=3"],
         "unknown flag '--stepz=3'"),
        (["run", "--tpu=v5e-8", "--config=configs/demo.py", "--workdir=/gcs/b/r", "--config.x"],
         "must read --config.KEY=VALUE"),
        (["run", "--tpu=v5e-8", "--config=configs/demo.py", "--workdir=/gcs/b/r", "--job=a b"],
         "--job='a b'"),
        (["create", "--tpu=v5e-8", "--config.x=1"], "unknown flag(s) for create"),
        (["logs", "--tpu=v5e-8", "--job=demo", "--lines=0"], "--lines=0 must be positive"),
        (["eval", "--tpu=v5e-8", "--benchmark=gsm8k", "--checkpoint=/c", "--output_dir=/o"],
         "--benchmark='gsm8k'; choose from ['math500', 'aime']"),
        (["eval", "--tpu=v5e-8", "--benchmark=aime", "--output_dir=/o"],
         "evals.aime needs --checkpoint=..."),
        (["eval", "--tpu=v5e-16", "--benchmark=aime", "--checkpoint=runs/x", "--output_dir=/o"],
         "--checkpoint=runs/x must be an absolute path every host mounts"),
        (["eval", "--tpu=v5e-8", "--benchmark=aime", "--checkpoint=/c", "--output_dir=/o", "x"],
         "eval flag 'x' must read --NAME[=VALUE]"),
    ],
)  # fmt: skip
def test_bad_flags_are_named(capsys, argv, message):
    assert gcloud_tpu.main([*argv, "--name=pod", "--zone=z", "--dry_run"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_entry_point(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "launch.gcloud_tpu",
            "delete",
            "--name=pod",
            "--zone=z",
            "--dry_run",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "gcloud compute tpus tpu-vm delete pod --zone=z --quiet\n"
    missing = subprocess.run(
        [sys.executable, "-m", "launch.gcloud_tpu", "run", "--name=pod", "--zone=z"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "--tpu" in missing.stderr
