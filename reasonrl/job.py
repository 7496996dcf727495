"""A job: train (or load) the tokenizer, then run every stage in order in one workdir.

The top of the stack: `reasonrl.main` calls `run_job`; each stage runs in the loop its objective
registered (`reasonrl.train.loops`). This module imports every loop, so a config naming any
registered objective validates and runs.

    workdir/
      tokenizer/                 the sentencepiece model, when the job trains one
      <stage>/checkpoints/       orbax checkpoints (train state + data iterator state)
      <stage>/tensorboard/       TensorBoard event files
      <stage>/metrics.jsonl      every step's metrics
      <stage>/export/            Hugging Face checkpoint (config.json, safetensors, tokenizer)

Re-running the same command resumes: a trained tokenizer is reused, finished stages are skipped
(their export is kept) and an interrupted stage continues from its newest readable checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax

from reasonrl import data as data_lib
from reasonrl.objectives import get_objective
from reasonrl.rl import loop as rl_loop  # noqa: F401  (registers the "rl" loop)
from reasonrl.train import supervised  # noqa: F401  (registers the "supervised" loop)
from reasonrl.train.config import stage_order, validate_job
from reasonrl.train.engine import StageResult
from reasonrl.train.exports import DONE_FILE, EXPORT_DIR
from reasonrl.train.loops import get_loop

@dataclasses.dataclass
class JobResult:
    workdir: Path
    tokenizer_path: Path
    stages: dict[str, StageResult]

    def summary(self) -> str:
        lines = [f"workdir: {self.workdir}", f"tokenizer: {self.tokenizer_path}"]
        for name, result in self.stages.items():
            loss = ("(finished earlier)" if result.first_loss is None else
                    f"loss {result.first_loss:.4f} -> {result.last_loss:.4f}")
            lines += [f"stage {name}: {result.steps} steps, {loss}",
                      f"  checkpoints: {result.workdir / 'checkpoints'}",
                      f"  tensorboard: {result.workdir / 'tensorboard'}",
                      f"  metrics:     {result.workdir / 'metrics.jsonl'}",
                      f"  HF export:   {result.export_dir}"]
        return "\n".join(lines)


def _tokenizer(config, workdir: Path) -> tuple[data_lib.Tokenizer, Path, tuple[Path, ...]]:
    tok = config.tokenizer
    if tok.path:
        path = Path(tok.path)
    else:
        path = workdir / "tokenizer"
        model_file = path / "tokenizer.model"
        if not model_file.exists() and jax.process_index() == 0:
            data_lib.train_sentencepiece(tok.train_on, str(path), vocab_size=tok.vocab_size)
        path = model_file
    files = tuple(p for p in ([path] if path.is_file() else sorted(path.iterdir()))
                  if p.is_file())
    return data_lib.load_tokenizer(str(path)), path, files


def run_job(config, workdir: str | Path, *, config_file: str | None = None) -> JobResult:
    """Validates `config` (before anything compiles), then runs it in `workdir`."""
    validate_job(config, jax.device_count(), config_file)
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    tokenizer, tokenizer_path, tokenizer_files = _tokenizer(config, workdir)
    exports: dict[str, Path] = {}
    results: dict[str, StageResult] = {}
    for name in stage_order(config, config_file):
        stage = config.stages[name]
        stage_dir = workdir / name
        done = stage_dir / DONE_FILE
        if done.exists():
            info = json.loads(done.read_text())
            results[name] = StageResult(stage_dir, stage_dir / EXPORT_DIR, info["steps"], None,
                                        None, None)
        else:
            run = get_loop(get_objective(stage.objective.name).loop).run
            results[name] = run(stage, stage_dir, tokenizer=tokenizer,
                                tokenizer_files=tokenizer_files, stage_exports=exports)
            if jax.process_index() == 0:
                done.write_text(json.dumps({"steps": results[name].steps,
                                            "first_loss": results[name].first_loss,
                                            "last_loss": results[name].last_loss}) + "\n")
        exports[name] = stage_dir / EXPORT_DIR
    return JobResult(workdir, tokenizer_path, results)
