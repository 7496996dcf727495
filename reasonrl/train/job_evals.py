"""Evals a job runs on its stages' exports, by name: `config.evals.<name>`.

    config.evals.sft = dict(kind="spectrum", stage="sft", options=dict(format="chat"))

runs the eval registered as "spectrum" on stage `sft`'s Hugging Face export once every stage
has finished, writing into `workdir/evals/sft/` (each eval kind's files, e.g. `summary.json`).
An eval's directory is fingerprinted like a stage's (its kind, options and the stage's
fingerprint): a rerun of the job keeps a finished eval made from the same inputs, reruns an
unfinished one, and refuses one made from other inputs (`reasonrl.workdir.reconcile`).

An eval kind registers a `JobEval`: `check(options)` validates the options before anything
trains (a ValueError / TypeError naming the option), `run(...)` evaluates one export and
returns its headline metrics. Evals of a job run on every process (the sampler and the
forward are SPMD programs); only process 0 writes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_collections

EVALS_DIR = "evals"


@dataclasses.dataclass(frozen=True)
class JobEval:
    """An eval kind a job can run.

    Attributes:
      name: the `kind` configs name.
      check: options (plain dict) -> None; raises ValueError / TypeError naming a bad option.
      run: (export_dir, tokenizer, options, output_dir, title) -> headline metrics; writes the
        eval's files into output_dir (process 0 only), `done_file` last.
      read_metrics: output_dir -> the headline metrics of a finished run.
      done_file: the file whose presence says the eval finished.
    """

    name: str
    check: Callable[[dict], None]
    run: Callable[[Path, Any, dict, Path, str], dict[str, float]]
    read_metrics: Callable[[Path], dict[str, float]]
    done_file: str = "summary.json"


JOB_EVALS: dict[str, JobEval] = {}


def register_job_eval(job_eval: JobEval) -> JobEval:
    if job_eval.name in JOB_EVALS:
        raise ValueError(f"job eval {job_eval.name!r} is registered twice")
    JOB_EVALS[job_eval.name] = job_eval
    return job_eval


def eval_config() -> ml_collections.ConfigDict:
    """Every field of one `config.evals.<name>` entry."""
    return ml_collections.ConfigDict(
        dict(
            kind="",  # a name in JOB_EVALS, e.g. "spectrum"
            stage="",  # the stage whose export it evaluates
            options={},  # the eval kind's options (e.g. reasonrl.spectrum.SpectrumEvalSettings)
        )
    )


def eval_directory(workdir: Path, name: str) -> Path:
    return workdir / EVALS_DIR / name
