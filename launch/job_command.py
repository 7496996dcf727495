"""The job command both launchers run on every TPU host, and the checks on its flags.

Every host runs the same command line, `python -m reasonrl.main --config=... --workdir=/gcs/...`
plus the `--config.*` overrides; nothing in it depends on the host. Which process a host is
comes from the TPU environment (`reasonrl.parallel.initialize_distributed`), told which cluster
to read through `REASONRL_CLUSTER`. A preempted job resumes by running the same command again:
`reasonrl.main` continues every interrupted stage from the newest checkpoint in its workdir.
"""

from __future__ import annotations

import pathlib
import shlex
from collections.abc import Mapping, Sequence

from launch.topology import TpuTopology

__all__ = [
    "MODULE",
    "REPO_ROOT",
    "EVAL_BINARIES",
    "eval_argv",
    "job_argv",
    "job_env",
    "parse_overrides",
    "shell_command",
    "validate_config",
    "validate_workdir",
]

MODULE = "reasonrl.main"
# Eval binaries that run on several hosts (every host samples and grades its share; process 0
# writes the output): `evals.<name>`.
EVAL_BINARIES = ("math500", "aime")
REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
OVERRIDE_PREFIX = "--config."


def parse_overrides(args: Sequence[str]) -> list[str]:
    """`--config.KEY=VALUE` arguments, checked; returns them as given.

    Raises:
      ValueError: for any other argument (naming it), or an override without `=VALUE`.
    """
    overrides = []
    for arg in args:
        if not arg.startswith(OVERRIDE_PREFIX):
            raise ValueError(
                f"unknown flag {arg!r}: besides the launcher's own flags only "
                f"{OVERRIDE_PREFIX}KEY=VALUE overrides are passed on to {MODULE}"
            )
        key, sep, _ = arg[len(OVERRIDE_PREFIX) :].partition("=")
        if not sep or not key:
            raise ValueError(f"override {arg!r} must read {OVERRIDE_PREFIX}KEY=VALUE")
        overrides.append(arg)
    return overrides


def validate_config(config: str, *, flag: str = "--config") -> str:
    """`config` as a path relative to the repository root (the hosts run from their copy).

    Raises:
      ValueError: naming `flag` when the file is missing, or outside the repository.
    """
    if not config:
        raise ValueError(f"{flag} is required (e.g. {flag}=configs/dpo.py)")
    path = pathlib.Path(config)
    absolute = path if path.is_absolute() else REPO_ROOT / path
    absolute = absolute.resolve()
    if not absolute.is_file():
        raise ValueError(f"{flag}={config}: no such file under {REPO_ROOT}")
    try:
        return str(absolute.relative_to(REPO_ROOT))
    except ValueError:
        raise ValueError(
            f"{flag}={config} is outside the repository {REPO_ROOT}; the hosts only get the "
            "repository's files, so put the config under configs/"
        ) from None


def validate_workdir(workdir: str, topology: TpuTopology, *, flag: str = "--workdir") -> str:
    """`workdir`, which on a multi-host slice all hosts must share: an absolute path on a
    filesystem mounted at the same place on every host (a gcsfuse mount of the bucket, NFS).

    Raises:
      ValueError: naming `flag` when it is empty, a URL (`gs://...`: the job writes through the
        local filesystem and refuses it; mount the bucket instead), or relative on a multi-host
        slice.
    """
    if not workdir:
        raise ValueError(f"{flag} is required (e.g. {flag}=/gcs/BUCKET/runs/NAME)")
    if "://" in workdir:
        raise ValueError(
            f"{flag}={workdir} is a URL; the job writes through the local filesystem: mount the "
            "bucket on every host (gcsfuse --implicit-dirs BUCKET /gcs/BUCKET) and pass "
            f"{flag}=/gcs/BUCKET/..."
        )
    if topology.multi_host and not workdir.startswith("/"):
        raise ValueError(
            f"{flag}={workdir} must be an absolute path on a filesystem every host mounts "
            f"(gcsfuse, NFS) on {topology.name} ({topology.hosts} hosts): every host writes "
            "checkpoints there and reads them back on resume"
        )
    return workdir.rstrip("/")


def job_env(topology: TpuTopology, cluster: str) -> dict[str, str]:
    """The environment of the job on every host: which cluster description to start from.

    `cluster` is the `jax.distributed` detection method (`gcetpu` for TPU VMs made with gcloud,
    `gketpu` for GKE); a single-host slice needs none.
    """
    return {"REASONRL_CLUSTER": cluster} if topology.multi_host else {}


def job_argv(config: str, workdir: str, overrides: Sequence[str], *, python: str) -> list[str]:
    """`python -m reasonrl.main --config=... --workdir=... --config.K=V ...`."""
    return [python, "-m", MODULE, f"--config={config}", f"--workdir={workdir}", *overrides]


def eval_argv(
    benchmark: str, eval_flags: Sequence[str], topology: TpuTopology, *, python: str
) -> list[str]:
    """`python -m evals.BENCHMARK FLAGS...`, the same on every host.

    Raises:
      ValueError: for an unknown benchmark, a missing --checkpoint or --output_dir, a flag that
        is not `--NAME[=VALUE]`, or (on a multi-host slice) a checkpoint path that is not
        absolute: every host loads it, from a filesystem mounted at the same place (gcsfuse,
        NFS). Only process 0 writes --output_dir.
    """
    if benchmark not in EVAL_BINARIES:
        raise ValueError(f"--benchmark={benchmark!r}; choose from {list(EVAL_BINARIES)}")
    names = {}
    for flag in eval_flags:
        if not flag.startswith("--") or len(flag) < 3:
            raise ValueError(f"eval flag {flag!r} must read --NAME[=VALUE]")
        name, _, value = flag[2:].partition("=")
        names[name] = value
    for required in ("checkpoint", "output_dir"):
        if not names.get(required):
            raise ValueError(f"evals.{benchmark} needs --{required}=... after the launcher's flags")
    if topology.multi_host and not names["checkpoint"].startswith("/"):
        raise ValueError(
            f"--checkpoint={names['checkpoint']} must be an absolute path every host mounts "
            f"(e.g. a gcsfuse mount of the bucket) on {topology.name} ({topology.hosts} hosts)"
        )
    return [python, "-m", f"evals.{benchmark}", *eval_flags]


def shell_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """`argv` as one shell-quoted line, prefixed by `K=V` assignments for `env`."""
    assignments = [f"{k}={shlex.quote(v)}" for k, v in sorted((env or {}).items())]
    return " ".join([*assignments, *(shlex.quote(a) for a in argv)])
