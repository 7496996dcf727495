"""TPU VMs without XManager: create, install, run, logs, stop, delete through `gcloud`.

    python -m launch.gcloud_tpu create  --name=NAME --zone=ZONE --tpu=v5e-16 [--spot] [--queued]
    python -m launch.gcloud_tpu install --name=NAME --zone=ZONE
    python -m launch.gcloud_tpu run     --name=NAME --zone=ZONE --tpu=v5e-16 \
        --config=configs/dpo.py --workdir=/gcs/BUCKET/runs/dpo [--config.KEY=VALUE ...]
    python -m launch.gcloud_tpu eval    --name=NAME --zone=ZONE --tpu=v5e-16 --benchmark=math500 \
        --checkpoint=/gcs/BUCKET/runs/grpo/rl/export --output_dir=/tmp/math500 [--limit=...]
    python -m launch.gcloud_tpu logs    --name=NAME --zone=ZONE --tpu=v5e-16 --job=dpo
    python -m launch.gcloud_tpu stop    --name=NAME --zone=ZONE --job=dpo
    python -m launch.gcloud_tpu delete  --name=NAME --zone=ZONE [--queued]

Add `--dry_run` to any of them to print every command it would run (one per line, shell-quoted)
and run nothing. `run` starts the job detached on every worker (`--worker=all`) with one command
line, the same on every host; each worker writes its own log, `~/reasonrl-logs/JOB.log`, which
`logs` prints worker by worker. A preempted job resumes by `run` with the same flags: the job
continues from the newest checkpoint in its workdir. `eval` starts an eval binary the same
way (every flag after the launcher's goes to it; its log is `eval-BENCHMARK` unless `--job`);
every host samples and grades its share, process 0 writes `--output_dir`, and rerunning resumes.
"""

from __future__ import annotations

import argparse
import pathlib
import shlex
import subprocess
import sys
from collections.abc import Sequence

from launch import job_command
from launch.topology import get_topology

__all__ = ["build_commands", "main", "parse_args"]

REMOTE_DIR = "$HOME/reasonrl"  # the repository copy on every worker (expanded by its shell)
REMOTE_LOGS = "$HOME/reasonrl-logs"
REMOTE_ARCHIVE = "reasonrl-src.tgz"  # scp'd into the worker's home
REMOTE_PYTHON = ".venv/bin/python"  # relative to REMOTE_DIR
CLUSTER = "gcetpu"  # jax.distributed reads the TPU VM metadata: worker id, worker addresses
TAR_EXCLUDES = (".git", ".venv", "runs", "__pycache__", "*.egg-info", ".drafts")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch.gcloud_tpu", description=__doc__.split("\n")[0]
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", required=True, help="TPU VM (or queued resource) name.")
    common.add_argument("--zone", required=True, help="e.g. us-west4-a.")
    common.add_argument("--project", default=None, help="GCP project; gcloud's default if unset.")
    common.add_argument("--dry_run", action="store_true", help="Print every command; run nothing.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = sub.add_parser("create", parents=[common], help="Create the TPU VM (or queue it).")
    create.add_argument("--tpu", required=True, help="Slice, e.g. v5e-16 (launch/topology.py).")
    create.add_argument("--spot", action="store_true", help="Spot (preemptible) capacity.")
    create.add_argument(
        "--queued", action="store_true", help="Request it as a queued resource (waits for it)."
    )
    create.add_argument("--runtime_version", default=None, help="Default: the slice's image.")

    sub.add_parser(
        "install",
        parents=[common],
        help="Copy this repository to every worker, "
        "install it with jax[tpu] into $HOME/reasonrl/.venv.",
    )

    run = sub.add_parser("run", parents=[common], help="Start the job on every worker.")
    run.add_argument("--tpu", required=True, help="Slice, e.g. v5e-16 (launch/topology.py).")
    run.add_argument("--config", required=True, help="Job config, e.g. configs/dpo.py.")
    run.add_argument("--workdir", required=True, help="/gcs/BUCKET/runs/NAME on multi-host.")
    run.add_argument("--job", default=None, help="Log name; default: the config's file stem.")

    evaluate = sub.add_parser("eval", parents=[common], help="Start an eval on every worker.")
    evaluate.add_argument("--tpu", required=True, help="Slice, e.g. v5e-16 (launch/topology.py).")
    evaluate.add_argument(
        "--benchmark", required=True, help=f"One of {list(job_command.EVAL_BINARIES)}."
    )
    evaluate.add_argument("--job", default=None, help="Log name; default: eval-BENCHMARK.")

    logs = sub.add_parser("logs", parents=[common], help="Print each worker's log.")
    logs.add_argument("--tpu", required=True, help="Slice, e.g. v5e-16 (launch/topology.py).")
    logs.add_argument("--job", required=True, help="The job's log name (run's --job).")
    logs.add_argument("--lines", type=int, default=100, help="Last lines per worker.")

    stop = sub.add_parser("stop", parents=[common], help="Stop the job on every worker.")
    stop.add_argument("--job", required=True, help="The job's log name (run's --job).")

    delete = sub.add_parser("delete", parents=[common], help="Delete the TPU VM.")
    delete.add_argument("--queued", action="store_true", help="It was created with --queued.")
    return parser


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """(flags, the rest): `run`'s --config.* overrides, or `eval`'s flags for the binary.

    Raises:
      ValueError: for an unknown flag or a malformed override, naming it.
    """
    args, rest = _parser().parse_known_args(list(argv))
    if args.command == "eval":
        return args, rest
    if rest and args.command != "run":
        raise ValueError(f"unknown flag(s) for {args.command}: {' '.join(rest)}")
    return args, job_command.parse_overrides(rest)


def _where(args: argparse.Namespace) -> list[str]:
    flags = [f"--zone={args.zone}"]
    if args.project:
        flags.append(f"--project={args.project}")
    return flags


def _ssh(args: argparse.Namespace, worker: str, remote: str) -> list[str]:
    return [
        "gcloud", "compute", "tpus", "tpu-vm", "ssh", args.name, *_where(args),
        f"--worker={worker}", f"--command={remote}",
    ]  # fmt: skip


def _create(args: argparse.Namespace) -> list[list[str]]:
    topology = get_topology(args.tpu)
    version = args.runtime_version or topology.runtime_version
    spot = ["--spot"] if args.spot else []
    if args.queued:
        return [[
            "gcloud", "compute", "tpus", "queued-resources", "create", args.name,
            f"--node-id={args.name}", *_where(args),
            f"--accelerator-type={topology.accelerator_type}",
            f"--runtime-version={version}", *spot,
        ]]  # fmt: skip
    return [[
        "gcloud", "compute", "tpus", "tpu-vm", "create", args.name, *_where(args),
        f"--accelerator-type={topology.accelerator_type}", f"--version={version}", *spot,
    ]]  # fmt: skip


def _install(args: argparse.Namespace) -> list[list[str]]:
    archive = f"/tmp/reasonrl-src-{args.name}.tgz"
    excludes = [f"--exclude={pattern}" for pattern in TAR_EXCLUDES]
    remote = (
        f"set -e; rm -rf {REMOTE_DIR}; mkdir -p {REMOTE_DIR}; "
        f"tar -xzf $HOME/{REMOTE_ARCHIVE} -C {REMOTE_DIR}; cd {REMOTE_DIR}; "
        "python3 -m venv .venv; .venv/bin/pip install -q -U pip; "
        ".venv/bin/pip install -q -e '.[tpu]'"
    )
    return [
        ["tar", "-czf", archive, *excludes, "-C", str(job_command.REPO_ROOT), "."],
        [
            "gcloud",
            "compute",
            "tpus",
            "tpu-vm",
            "scp",
            archive,
            f"{args.name}:{REMOTE_ARCHIVE}",
            *_where(args),
            "--worker=all",
        ],  # fmt: skip
        _ssh(args, "all", remote),
    ]


def remote_run_command(
    config: str, workdir: str, overrides: Sequence[str], env: dict[str, str], job: str
) -> str:
    """The shell line every worker runs: the job, detached, its output in the worker's log."""
    argv = job_command.job_argv(config, workdir, overrides, python=REMOTE_PYTHON)
    return remote_detached(argv, env, job)


def remote_detached(argv: Sequence[str], env: dict[str, str], job: str) -> str:
    """`argv` run detached from the repository copy, its output in the worker's JOB.log."""
    line = job_command.shell_command(["nohup", *argv], env)  # K=V nohup python -m ...
    log, pid = f"{REMOTE_LOGS}/{job}.log", f"{REMOTE_LOGS}/{job}.pid"
    return (
        f"mkdir -p {REMOTE_LOGS} && cd {REMOTE_DIR} && "
        f"({line} > {log} 2>&1 < /dev/null & echo $! > {pid})"
    )


def _job_name(job: str) -> str:
    if not job or not all(c.isalnum() or c in "-_." for c in job):
        raise ValueError(f"--job={job!r} must be a non-empty name of letters, digits, -_.")
    return job


def _run(args: argparse.Namespace, overrides: Sequence[str]) -> list[list[str]]:
    topology = get_topology(args.tpu)
    config = job_command.validate_config(args.config)
    workdir = job_command.validate_workdir(args.workdir, topology)
    job = _job_name(args.job or pathlib.Path(config).stem)
    env = job_command.job_env(topology, CLUSTER)
    return [_ssh(args, "all", remote_run_command(config, workdir, overrides, env, job))]


def _eval(args: argparse.Namespace, eval_flags: Sequence[str]) -> list[list[str]]:
    topology = get_topology(args.tpu)
    argv = job_command.eval_argv(args.benchmark, eval_flags, topology, python=REMOTE_PYTHON)
    job = _job_name(args.job or f"eval-{args.benchmark}")
    env = job_command.job_env(topology, CLUSTER)
    return [_ssh(args, "all", remote_detached(argv, env, job))]


def _logs(args: argparse.Namespace) -> list[list[str]]:
    topology = get_topology(args.tpu)
    job = _job_name(args.job)
    if args.lines <= 0:
        raise ValueError(f"--lines={args.lines} must be positive")
    tail = f"echo '== worker '$(hostname); tail -n {args.lines} {REMOTE_LOGS}/{job}.log"
    return [_ssh(args, str(worker), tail) for worker in range(topology.hosts)]


def _stop(args: argparse.Namespace) -> list[list[str]]:
    pid = f"{REMOTE_LOGS}/{_job_name(args.job)}.pid"
    return [_ssh(args, "all", f"if [ -f {pid} ]; then kill $(cat {pid}) || true; rm -f {pid}; fi")]


def _delete(args: argparse.Namespace) -> list[list[str]]:
    if args.queued:
        return [[
            "gcloud", "compute", "tpus", "queued-resources", "delete", args.name, *_where(args),
            "--force", "--quiet",
        ]]  # fmt: skip
    return [["gcloud", "compute", "tpus", "tpu-vm", "delete", args.name, *_where(args), "--quiet"]]


def build_commands(args: argparse.Namespace, overrides: Sequence[str] = ()) -> list[list[str]]:
    """Every command (an argv list) the subcommand runs, in order; contacts nothing.

    Raises:
      ValueError: for a bad flag value, naming the flag.
    """
    if args.command == "create":
        return _create(args)
    if args.command == "install":
        return _install(args)
    if args.command == "run":
        return _run(args, overrides)
    if args.command == "eval":
        return _eval(args, overrides)
    if args.command == "logs":
        return _logs(args)
    if args.command == "stop":
        return _stop(args)
    if args.command == "delete":
        return _delete(args)
    raise ValueError(f"unknown command {args.command!r}")


def _execute(command: Sequence[str]) -> None:
    """Runs one command, stopping the sequence at the first failure."""
    subprocess.run(list(command), check=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs (or with --dry_run prints) the commands; exit status 2 for a bad flag."""
    try:
        args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
        commands = build_commands(args, overrides)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for command in commands:
        print(shlex.join(command), flush=True)
        if not args.dry_run:
            _execute(command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
