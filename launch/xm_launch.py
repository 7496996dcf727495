"""XManager launcher: the job on a TPU slice, one work unit per sweep point.

    python -m launch.xm_launch --config=configs/dpo.py --workdir=/gcs/BUCKET/runs/dpo \
        --tpu=v5e-16 [--config.KEY=VALUE ...] [--sweep=KEY=V1,V2 ...] [--name=EXPERIMENT]

`build_job_spec` turns the flags into plain data (experiment title, image, accelerator request,
one work unit per sweep point with its name, command-line arguments, environment and workdir)
without importing xmanager or contacting any service; `--dry_run` prints it as JSON.
Without --dry_run, `launch` hands the spec to XManager (`pip install xmanager`; not a
dependency of reasonrl): it packages this repository into a container that installs
`.[tpu]`, requests the slice from GKE (`xm_local.Kubernetes`) and starts
`python -m reasonrl.main` on every host of every work unit. GKE describes the slice to each
host (TPU_WORKER_HOSTNAMES, TPU_WORKER_ID), which `REASONRL_CLUSTER=gketpu` tells
`reasonrl.parallel.initialize_distributed` to read.

Sweeps: `--sweep=stages.sft.optimizer.learning_rate=1e-4,3e-4` (repeatable; the work units
are the product of all sweeps). A sweep of more than one point gives each work unit its own
workdir, `WORKDIR/<work unit name>`. A preempted work unit resumes by launching it again with
the same flags: each job continues from the newest checkpoint in its workdir.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import pathlib
import re
import sys
from collections.abc import Sequence

from launch import job_command
from launch.topology import TpuTopology, get_topology

__all__ = ["JobSpec", "WorkUnitSpec", "build_job_spec", "launch", "main", "parse_sweeps"]

CLUSTER = "gketpu"  # jax.distributed reads TPU_WORKER_HOSTNAMES / TPU_WORKER_ID set by GKE
BASE_IMAGE = "python:3.11-slim"
CONTAINER_DIR = "/workdir/reasonrl"


@dataclasses.dataclass(frozen=True)
class WorkUnitSpec:
    """One work unit: the same job on every host of its slice.

    Attributes:
      name: short, path-safe name (`learning_rate=1e-4`), also its workdir's last part.
      args: `reasonrl.main` flags (name without `--` -> value), in order.
      env: environment of the job on every host.
    """

    name: str
    args: dict[str, str]
    env: dict[str, str]

    def argv(self) -> list[str]:
        """The command every host of this work unit runs."""
        flags = [f"--{key}={value}" for key, value in self.args.items()]
        return ["python", "-m", job_command.MODULE, *flags]


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """Everything XManager is asked for, as plain data.

    Attributes:
      experiment_title: the experiment's name in XManager.
      topology: the TPU slice each work unit gets.
      requirements: `xm.JobRequirements(**requirements)`, e.g. {'tpu_v5e': '4x4'}.
      base_image, docker_instructions: how the repository is packaged.
      module: the Python module every host runs.
      work_units: one per sweep point.
    """

    experiment_title: str
    topology: TpuTopology
    requirements: dict[str, str]
    base_image: str
    docker_instructions: list[str]
    module: str
    work_units: list[WorkUnitSpec]

    def to_json(self) -> str:
        """The spec, readable (the --dry_run output)."""
        data = dataclasses.asdict(self)
        data["work_units"] = [
            {**dataclasses.asdict(wu), "argv": wu.argv()} for wu in self.work_units
        ]
        return json.dumps(data, indent=2)


def parse_sweeps(sweeps: Sequence[str], *, flag: str = "--sweep") -> list[tuple[str, list[str]]]:
    """`KEY=V1,V2` strings -> [(config.KEY, [V1, V2])].

    Raises:
      ValueError: naming `flag` for a sweep without `=`, without values, or a key swept twice.
    """
    parsed: list[tuple[str, list[str]]] = []
    for sweep in sweeps:
        key, sep, values = sweep.partition("=")
        key = key.strip().removeprefix("--").removeprefix("config.")
        points = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not points:
            raise ValueError(f"{flag}={sweep!r} must read KEY=V1,V2,... (a config field)")
        if any(f"config.{key}" == seen for seen, _ in parsed):
            raise ValueError(f"{flag}: config.{key} is swept twice")
        parsed.append((f"config.{key}", points))
    return parsed


def _unit_name(point: Sequence[tuple[str, str]]) -> str:
    if not point:
        return "main"
    parts = [f"{key.rsplit('.', 1)[-1]}={value}" for key, value in point]
    return re.sub(r"[^A-Za-z0-9_.=,-]", "_", ",".join(parts))


def build_job_spec(
    config: str,
    workdir: str,
    tpu: str,
    overrides: Sequence[str] = (),
    sweeps: Sequence[str] = (),
    name: str | None = None,
) -> JobSpec:
    """The experiment for these flags, as plain data; imports nothing, contacts nothing.

    Raises:
      ValueError: naming the flag, for an unknown slice, a missing config, a local workdir on a
        multi-host slice, a malformed override or sweep, or an override that is also swept.
    """
    topology = get_topology(tpu)
    config = job_command.validate_config(config)
    workdir = job_command.validate_workdir(workdir, topology)
    overrides = job_command.parse_overrides(overrides)
    swept = parse_sweeps(sweeps)
    fixed: dict[str, str] = {}
    for override in overrides:
        key, _, value = override.removeprefix("--").partition("=")
        fixed[key] = value
    for key, _ in swept:
        if key in fixed:
            raise ValueError(f"--{key} is both overridden and swept (--sweep); keep one")
    title = name or f"reasonrl-{pathlib.Path(config).stem}-{topology.name}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", title):
        raise ValueError(f"--name={title!r} must be letters, digits and -_. (an experiment title)")

    env = job_command.job_env(topology, CLUSTER)
    points = list(itertools.product(*[[(key, v) for v in values] for key, values in swept]))
    work_units = []
    for point in points:
        unit = _unit_name(point)
        unit_workdir = workdir if len(points) == 1 else f"{workdir}/{unit}"
        args = {"config": config, "workdir": unit_workdir, **fixed, **dict(point)}
        work_units.append(WorkUnitSpec(name=unit, args=args, env=dict(env)))
    return JobSpec(
        experiment_title=title,
        topology=topology,
        requirements={topology.xm_resource: topology.xm_topology},
        base_image=BASE_IMAGE,
        docker_instructions=[
            f"COPY {job_command.REPO_ROOT.name}/ {CONTAINER_DIR}",
            f"WORKDIR {CONTAINER_DIR}",
            "RUN pip install --no-cache-dir -e '.[tpu]'",
        ],
        module=job_command.MODULE,
        work_units=work_units,
    )


def launch(spec: JobSpec) -> None:  # pragma: no cover - needs xmanager and a GCP project
    """Creates the experiment in XManager and adds one work unit per sweep point.

    Raises:
      RuntimeError: when xmanager is not installed.
    """
    try:
        from xmanager import xm, xm_local
    except ImportError as error:
        raise RuntimeError(
            "launching needs the xmanager package (pip install xmanager); "
            "--dry_run prints the job spec without it"
        ) from error

    executor = xm_local.Kubernetes(
        requirements=xm.JobRequirements(**spec.requirements),
        tpu_capability=xm_local.TpuCapability(tpu_runtime_version=spec.topology.runtime_version),
    )
    with xm_local.create_experiment(experiment_title=spec.experiment_title) as experiment:
        [executable] = experiment.package(
            [
                xm.python_container(
                    executor_spec=executor.Spec(),
                    path=str(job_command.REPO_ROOT),
                    entrypoint=xm.ModuleName(spec.module),
                    base_image=spec.base_image,
                    docker_instructions=spec.docker_instructions,
                    use_deep_module=True,
                )
            ]
        )
        for unit in spec.work_units:
            job = xm.Job(
                executable=executable, executor=executor, args=unit.args, env_vars=unit.env
            )
            experiment.add(job, identity=unit.name)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch.xm_launch", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", required=True, help="Job config, e.g. configs/dpo.py.")
    parser.add_argument("--workdir", required=True, help="/gcs/BUCKET/runs/NAME on multi-host.")
    parser.add_argument("--tpu", required=True, help="Slice, e.g. v5e-16 (launch/topology.py).")
    parser.add_argument(
        "--sweep", action="append", default=[], help="KEY=V1,V2: one work unit per value."
    )
    parser.add_argument("--name", default=None, help="Experiment title.")
    parser.add_argument("--dry_run", action="store_true", help="Print the job spec; launch none.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Builds the spec and launches it (or prints it); exit status 2 for a bad flag."""
    args, rest = _parser().parse_known_args(sys.argv[1:] if argv is None else list(argv))
    try:
        spec = build_job_spec(args.config, args.workdir, args.tpu, rest, args.sweep, args.name)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(spec.to_json(), flush=True)
    if not args.dry_run:
        launch(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
