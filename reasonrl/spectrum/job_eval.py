"""The spectrum evals as a job eval (`config.evals.<name> = dict(kind="spectrum", ...)`, see
`reasonrl.train.job_evals`): options are `SpectrumEvalSettings` fields."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp

from reasonrl import models, parallel
from reasonrl.spectrum.evaluate import (
    SUMMARY_FILE,
    SpectrumEvalSettings,
    evaluate_spectrum,
    write_spectrum_reports,
)
from reasonrl.spectrum.suite import load_suite
from reasonrl.train.job_evals import JobEval, register_job_eval


def _check(options: dict) -> None:
    SpectrumEvalSettings(**options)


def _run(export_dir: Path, tokenizer, options: dict, output_dir: Path, title: str) -> dict:
    settings = SpectrumEvalSettings(**options)
    tasks = load_suite(settings.suite, settings.limit)
    mesh = parallel.make_mesh(dict(data=1, fsdp=-1, tensor=1))
    config, params = models.load_hf_checkpoint(str(export_dir), mesh=mesh, dtype=jnp.float32)
    summary, records = evaluate_spectrum(config, params, tokenizer, tasks, settings)
    summary["checkpoint"] = str(export_dir)
    if jax.process_index() == 0:
        write_spectrum_reports(output_dir, summary, records, title=title)
    return summary["metrics"]


def _read_metrics(output_dir: Path) -> dict:
    return json.loads((output_dir / SUMMARY_FILE).read_text())["metrics"]


SPECTRUM_JOB_EVAL = register_job_eval(
    JobEval(
        name="spectrum",
        check=_check,
        run=_run,
        read_metrics=_read_metrics,
        done_file=SUMMARY_FILE,
    )
)
