"""A job: train (or load) the tokenizer, then run every stage in order in one workdir.

The top of the stack: `reasonrl.main` calls `run_job`; each stage runs in the loop its objective
registered (`reasonrl.train.loops`). This module imports every loop, so a config naming any
registered objective validates and runs.

    workdir/
      .reasonrl.lock             held while a job runs in it (`lock_workdir`)
      tokenizer/                 the sentencepiece model, when the job trains one
        fingerprint.json         the corpus and vocab_size it was trained with
      <stage>/fingerprint.json   what the stage's result is made from (reasonrl.workdir.fingerprint)
      <stage>/checkpoints/       orbax checkpoints (train state + data iterator state)
      <stage>/tensorboard/       TensorBoard event files
      <stage>/metrics.jsonl      every step's metrics
      <stage>/export/            Hugging Face checkpoint (config.json, safetensors, tokenizer)
      <stage>/DONE.json          written when the stage finished (steps, first and last loss)
      evals/<name>/              each `config.evals.<name>` (reasonrl.train.job_evals), run on
                                 its stage's export after every stage finished

Re-running the same command resumes: a trained tokenizer is reused, finished stages are skipped
(their export is kept) and an interrupted stage continues from its newest readable checkpoint.

A workdir belongs to one job at a time: `run_job` holds its lock (`lock_workdir`) from the start
to the end, so a second job on it refuses at start, naming the holder (host, pid, start time).

Results are reused only when they were made from this job's inputs: before anything trains,
the fingerprint of the trained tokenizer and of every finished or interrupted stage (resolved
stage config, tokenizer sha256, input data files, the `init_from` stage's fingerprint: see
`reasonrl.workdir.fingerprint`) is compared with the one stored beside it, and any difference
raises one `FingerprintMismatchError` listing each differing field with its stored and new
value. `reuse_changed=True` (`--reuse_changed`) accepts the stored results anyway, with a
warning, and records the new fingerprints; checkpoints of another model shape are still refused
when a stage resumes (`reasonrl.train.checkpointing.CheckpointMismatchError`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import jax

from reasonrl import data as data_lib
from reasonrl.data.spec import SpecError
from reasonrl.data.tokenizer.training import THINKING_MARKERS, special_tokens
from reasonrl.objectives import get_objective
from reasonrl.rl import loop as rl_loop  # noqa: F401  (registers the "rl" loop)
from reasonrl.rlp import loop as rlp_loop  # noqa: F401  (registers the "rlp" loop)
from reasonrl.spectrum import job_eval as spectrum_eval  # noqa: F401  (registers "spectrum")
from reasonrl.train import supervised  # noqa: F401  (registers the "supervised" loop)
from reasonrl.train.checkpointing import CHECKPOINTS_DIR, checkpoint_steps
from reasonrl.train.config import job_error, objective_config, stage_order, validate_job
from reasonrl.train.engine import StageResult
from reasonrl.train.exports import DONE_FILE, EXPORT_DIR
from reasonrl.train.job_evals import JOB_EVALS, eval_directory
from reasonrl.train.loops import get_loop, loop_options
from reasonrl.train.preflight import check_job_inputs
from reasonrl.workdir import (
    DirectoryLock,
    ResultDir,
    atomic_write_json,
    file_identity,
    reconcile,
    record,
    stage_fingerprint,
    tokenizer_fingerprint,
    write_fingerprint,
)
from reasonrl.workdir.fingerprint import with_digest

TOKENIZER_DIR = "tokenizer"
LOCK_PURPOSE = "the job"


@dataclasses.dataclass
class JobResult:
    workdir: Path
    tokenizer_path: Path
    stages: dict[str, StageResult]
    evals: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"workdir: {self.workdir}", f"tokenizer: {self.tokenizer_path}"]
        for name, result in self.stages.items():
            loss = (
                "(finished earlier)"
                if result.first_loss is None
                else f"loss {result.first_loss:.4f} -> {result.last_loss:.4f}"
            )
            lines += [
                f"stage {name}: {result.steps} steps, {loss}",
                f"  checkpoints: {result.workdir / CHECKPOINTS_DIR}",
                f"  tensorboard: {result.workdir / 'tensorboard'}",
                f"  metrics:     {result.workdir / 'metrics.jsonl'}",
                f"  HF export:   {result.export_dir}",
            ]
        for name, metrics in self.evals.items():
            shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            lines.append(f"eval {name}: {eval_directory(self.workdir, name)}\n  {shown}")
        return "\n".join(lines)


def lock_workdir(workdir: str | Path) -> contextlib.AbstractContextManager:
    """The job's exclusive hold on `workdir` (`reasonrl.workdir.DirectoryLock`, the file
    `.reasonrl.lock` naming host, pid and start time): while held, another job on `workdir`
    refuses at start with `DirectoryLockedError` naming this holder; a lock left by a process
    that is gone is taken over with a warning.

    Taken by process 0 only: the other processes of a multi-host job are the same run (they
    would find process 0's lock), and stop with it when it refuses.
    """
    if jax.process_index() != 0:
        return contextlib.nullcontext()
    return DirectoryLock(workdir, purpose=LOCK_PURPOSE)


def _trained_tokenizer(tok, workdir: Path) -> tuple[Path, ResultDir]:
    """The job's own sentencepiece model (trained now, by process 0, unless it exists) and its
    result directory, fingerprinted by corpus and vocab_size."""
    directory = workdir / TOKENIZER_DIR
    model_file = directory / "tokenizer.model"
    extra = THINKING_MARKERS if tok.thinking_markers else ()
    fingerprint = tokenizer_fingerprint(tok.train_on, tok.vocab_size, extra)
    trained_before = model_file.exists()
    if not trained_before and jax.process_index() == 0:
        write_fingerprint(directory, fingerprint)
        try:
            data_lib.train_sentencepiece(
                tok.train_on,
                str(directory),
                vocab_size=tok.vocab_size,
                special_tokens=special_tokens(tok.thinking_markers),
            )
        except SpecError as error:  # "vocab_size: ..." does not fit the corpus
            raise job_error(f"tokenizer.{error}") from error
    return model_file, ResultDir(TOKENIZER_DIR, directory, fingerprint, trained_before)


def _tokenizer(config, workdir: Path):
    """(tokenizer, its path, its files, [its result directory when the job trains it])."""
    tok = config.tokenizer
    results = []
    if tok.path:
        path = Path(tok.path)
    else:
        path, result = _trained_tokenizer(tok, workdir)
        results.append(result)
    files = tuple(p for p in ([path] if path.is_file() else sorted(path.iterdir())) if p.is_file())
    return data_lib.load_tokenizer(str(path)), path, files, results


def resolved_stage(stage) -> dict:
    """The stage config as it runs, as a plain dict: the objective's options and the loop's
    own section (e.g. `rl`) with every default filled in."""
    resolved = stage.copy_and_resolve_references().to_dict()
    loop = get_loop(get_objective(stage.objective.name).loop)
    resolved["objective"] = {
        "name": stage.objective.name,
        **objective_config(stage).as_configdict().to_dict(),
    }
    options = loop_options(stage, loop)
    if options is not None:
        resolved[loop.name] = options.to_dict()
    return resolved


def _has_results(stage_dir: Path) -> bool:
    """Finished (DONE.json) or interrupted after a checkpoint."""
    return (stage_dir / DONE_FILE).exists() or bool(checkpoint_steps(stage_dir / CHECKPOINTS_DIR))


def _stage_dirs(config, workdir: Path, tokenizer_files, config_file) -> dict[str, ResultDir]:
    """Every stage's result directory and fingerprint, in run order."""
    stages: dict[str, ResultDir] = {}
    for name in stage_order(config, config_file):
        stage = config.stages[name]
        parent = stages[stage.model.init_from].fingerprint if stage.model.init_from else None
        fingerprint = stage_fingerprint(
            resolved_stage(stage), tokenizer_files=tokenizer_files, init_from=parent
        )
        stages[name] = ResultDir(
            f"stages.{name}", workdir / name, fingerprint, _has_results(workdir / name)
        )
    return stages


def _eval_dirs(config, workdir: Path, stages: dict[str, ResultDir]) -> dict[str, ResultDir]:
    """Every job eval's result directory, fingerprinted by its config (and the identity of the
    files its options name) and its stage's fingerprint."""
    evals: dict[str, ResultDir] = {}
    for name in sorted(config.get("evals") or {}):
        entry = config.evals[name].to_dict()
        options = entry.get("options") or {}
        inputs = {
            key: file_identity(value)
            for key, value in options.items()
            if isinstance(value, str) and Path(value).is_file()
        }
        fingerprint = with_digest(
            {"eval": entry, "inputs": inputs, "stage": stages[entry["stage"]].fingerprint["digest"]}
        )
        directory = eval_directory(workdir, name)
        done = (directory / JOB_EVALS[entry["kind"]].done_file).exists()
        evals[name] = ResultDir(f"evals.{name}", directory, fingerprint, done)
    return evals


def _run_eval(entry, result_dir: ResultDir, tokenizer, exports: dict[str, Path]) -> dict:
    """A finished eval's headline metrics (read back), or the eval run now."""
    job_eval = JOB_EVALS[entry.kind]
    directory = result_dir.directory
    if result_dir.has_results:
        return job_eval.read_metrics(directory)
    if jax.process_index() == 0:
        write_fingerprint(directory, result_dir.fingerprint)
    options = entry.get("options")
    return job_eval.run(
        exports[entry.stage],
        tokenizer,
        {} if options is None else options.to_dict(),
        directory,
        f"{directory.name}: {entry.kind} eval of stage {entry.stage}",
    )


def _run_stage(
    stage, result_dir: ResultDir, tokenizer, tokenizer_files, exports: dict[str, Path]
) -> StageResult:
    """A finished stage's recorded result, or the stage run (resumed) in its directory."""
    stage_dir = result_dir.directory
    done = stage_dir / DONE_FILE
    if done.exists():
        info = json.loads(done.read_text())
        return StageResult(stage_dir, stage_dir / EXPORT_DIR, info["steps"], None, None, None)
    if jax.process_index() == 0:
        write_fingerprint(stage_dir, result_dir.fingerprint)
    run = get_loop(get_objective(stage.objective.name).loop).run
    result = run(
        stage,
        stage_dir,
        tokenizer=tokenizer,
        tokenizer_files=tokenizer_files,
        stage_exports=exports,
    )
    if jax.process_index() == 0:
        atomic_write_json(
            done,
            {"steps": result.steps, "first_loss": result.first_loss, "last_loss": result.last_loss},
        )
    return result


def run_job(
    config, workdir: str | Path, *, config_file: str | None = None, reuse_changed: bool = False
) -> JobResult:
    """Validates `config` (before anything compiles; its data and vocabulary against the
    tokenizer too: `reasonrl.train.preflight`), then runs it in `workdir`, holding the
    workdir's lock throughout (`lock_workdir`).

    Raises `FingerprintMismatchError` before anything trains when the workdir's trained
    tokenizer or a finished or interrupted stage was made from other inputs, unless
    `reuse_changed` (then they are reused with a warning and their fingerprints updated).
    """
    validate_job(config, jax.device_count(), config_file)
    if "://" in str(workdir):
        raise job_error(
            f"workdir: {workdir} is a URL; the job writes through the local filesystem, so "
            f"mount the bucket on every host (e.g. gcsfuse) and pass its local path"
        )
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    with lock_workdir(workdir):
        tokenizer, tokenizer_path, tokenizer_files, tokenizer_dirs = _tokenizer(config, workdir)
        stages = _stage_dirs(config, workdir, tokenizer_files, config_file)
        evals = _eval_dirs(config, workdir, stages)
        reused = reconcile(
            workdir,
            [*tokenizer_dirs, *stages.values(), *evals.values()],
            reuse_changed=reuse_changed,
        )
        check_job_inputs(config, tokenizer, config_file=config_file)
        if jax.process_index() == 0:
            record(reused)
        exports: dict[str, Path] = {}
        results: dict[str, StageResult] = {}
        for name, result_dir in stages.items():
            results[name] = _run_stage(
                config.stages[name], result_dir, tokenizer, tokenizer_files, exports
            )
            exports[name] = result_dir.directory / EXPORT_DIR
        eval_metrics = {
            name: _run_eval(config.evals[name], result_dir, tokenizer, exports)
            for name, result_dir in evals.items()
        }
    return JobResult(workdir, tokenizer_path, results, eval_metrics)
