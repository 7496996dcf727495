"""The supervised loop: one optimizer update per batch of a grain data pipeline.

    result = run_supervised_stage(stage_config, workdir, tokenizer=tok)

Runs the objectives registered with loop="supervised" (next_token, sft, reward_model, dpo).
Each step: the next global batch (plus the objective's reference fields, if any) -> the jitted
train step. Every `train.eval_every` steps (and at the last) the mean loss and metrics over
`train.eval_batches` batches of `eval_data` are logged as "eval/<metric>". Resume, logs,
non-finite checks, checkpoints and the export are the stage engine's (`reasonrl.train.engine`).
"""

from __future__ import annotations

from pathlib import Path

import jax

from reasonrl import data as data_lib
from reasonrl.objectives import metrics as metrics_lib
from reasonrl.parallel import batch_sharding, make_mesh
from reasonrl.train.engine import StageResult, StageRun, StageSetup, build_stage, global_batch
from reasonrl.train.loops import StageLoop, register_loop


def run_supervised_stage(
    stage,
    workdir: str | Path,
    *,
    tokenizer,
    tokenizer_files: tuple[Path, ...] = (),
    stage_exports: dict[str, Path] | None = None,
    max_steps: int | None = None,
) -> StageResult:
    """Trains one stage in `workdir` (resuming from its newest readable checkpoint).

    Args:
      stage: a validated stage config (see `reasonrl.train.config.stage_config`).
      tokenizer: a `reasonrl.data.Tokenizer`; `tokenizer_files` are copied into the export.
      stage_exports: exports of earlier stages, by name, for `model.init_from`.
      max_steps: stop after this step (the schedule still follows `train.steps`).
    """
    train = stage.train
    mesh = make_mesh(stage.mesh.to_dict())
    per_host_batch = train.batch_size // jax.process_count()
    data_iter = data_lib.make_pipeline(
        stage.data,
        tokenizer,
        batch_size=per_host_batch,
        seq_len=train.seq_len,
        seed=train.seed,
        where=f"stages.{Path(workdir).name}.data",  # a bad record names the stage's field
    )
    setup = build_stage(stage, mesh, tokenizer, stage_exports or {}, total_updates=train.steps)
    rows = batch_sharding(mesh)
    evaluate = None
    if stage.eval_data:
        evaluate = LossEvaluator(setup, stage.eval_data.to_dict(), tokenizer, train)

    with StageRun(
        stage,
        workdir,
        setup,
        iterator=data_iter,
        tokens_per_update=train.batch_size * train.seq_len,
        max_steps=max_steps,
        evaluate=evaluate,
        tokenizer_files=tokenizer_files,
    ) as run:
        while run.step < run.end:
            batch = setup.complete_batch(global_batch(next(data_iter), rows))
            run.state, metrics = setup.train_step(batch)(run.state, batch)
            run.add_update(metrics)
            run.end_step()
    return run.result


class LossEvaluator:
    """params -> {"eval/loss", "eval/<metric>"}: the objective without gradients, averaged
    exactly (merged sums) over `train.eval_batches` batches of a fresh eval iterator."""

    def __init__(self, setup: StageSetup, spec: dict, tokenizer, train):
        self.setup = setup
        self.spec = spec
        self.tokenizer = tokenizer
        self.train = train
        self.rows = batch_sharding(setup.mesh)
        self._jitted = None

    def _eval_step(self, params, batch):
        loss_sum, denominator, metrics = self.setup.objective.fn(
            params,
            batch,
            jax.random.key(0),
            model=self.setup.model_ctx,
            config=self.setup.objective_config,
        )
        return {"loss": metrics_lib.Mean.of(loss_sum, denominator), **metrics}

    def __call__(self, params) -> dict[str, float]:
        iterator = data_lib.make_pipeline(
            self.spec,
            self.tokenizer,
            batch_size=self.train.batch_size // jax.process_count(),
            seq_len=self.train.seq_len,
            seed=0,
        )
        total = None
        for _ in range(self.train.eval_batches):
            try:
                batch = global_batch(next(iterator), self.rows)
            except StopIteration:
                break
            batch = self.setup.complete_batch(batch)
            if self._jitted is None:
                self._jitted = jax.jit(
                    self._eval_step,
                    in_shardings=(self.setup.shardings.params, {k: self.rows for k in batch}),
                )
            out = self._jitted(params, batch)
            total = out if total is None else metrics_lib.merge(total, out)
        if total is None:
            return {}
        return {
            f"eval/{k}": float(v) for k, v in jax.device_get(metrics_lib.compute(total)).items()
        }


def check_supervised_data(stage, spec, tokenizer, where: str, prefix: str) -> None:
    """Preflight: the spec builds and its first record becomes a training row."""
    del stage, prefix
    data_lib.check_spec(spec, tokenizer, where=where)


SUPERVISED_LOOP = register_loop(
    StageLoop(name="supervised", run=run_supervised_stage, check_data=check_supervised_data)
)
