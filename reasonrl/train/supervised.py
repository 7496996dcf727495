"""The supervised loop: one optimizer update per batch of a grain data pipeline.

    result = run_supervised_stage(stage_config, workdir, tokenizer=tok)

Runs the objectives registered with loop="supervised" (next_token, sft, reward_model, dpo).
Each step: the next global batch (plus the objective's reference fields, if any) -> the jitted
train step. The batch's rows come from `train.data_shards` logical data shards
(`reasonrl.data.layout`): each process builds only the shards whose rows its devices hold, so
the global batch, the losses and the params are the same whatever the process count. Every
`train.eval_every` steps (and at the last) the mean loss and metrics over `train.eval_batches`
batches of `eval_data` (sharded alike) are logged as "eval/<metric>". Resume, logs,
non-finite checks, checkpoints and the export are the stage engine's (`reasonrl.train.engine`).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from reasonrl.data.layout import check_sharded_spec, make_sharded_pipeline
from reasonrl.objectives import metrics as metrics_lib
from reasonrl.parallel import batch_sharding, make_mesh
from reasonrl.train.engine import (
    StageResult,
    StageRun,
    StageSetup,
    build_stage,
    global_batch,
    process_rows,
)
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
    name = Path(workdir).name
    mesh = make_mesh(stage.mesh.to_dict())
    rows = batch_sharding(mesh)
    data_iter = make_sharded_pipeline(
        stage.data,
        tokenizer,
        batch_size=train.batch_size,
        seq_len=train.seq_len,
        num_shards=data_shards(train),
        rows=process_rows(rows, train.batch_size),
        seed=train.seed,
        field=f"stages.{name}.train.data_shards",
        where=f"stages.{name}.data",  # a bad record names the stage's field
    )
    try:
        setup = build_stage(stage, mesh, tokenizer, stage_exports or {}, total_updates=train.steps)
        evaluate = None
        if stage.eval_data:
            evaluate = LossEvaluator(
                setup, stage.eval_data.to_dict(), tokenizer, train, where=f"stages.{name}"
            )

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
    finally:
        data_iter.close()
    return run.result


def data_shards(train) -> int:
    """S, the logical data shards of the stage's global batch: `train.data_shards`, or one per
    row of `train.batch_size` when 0 (see `reasonrl.data.layout`)."""
    return train.data_shards or train.batch_size


class LossEvaluator:
    """params -> {"eval/loss", "eval/<metric>"}: the objective without gradients, averaged
    exactly (merged sums) over `train.eval_batches` batches of a fresh eval iterator."""

    def __init__(self, setup: StageSetup, spec: dict, tokenizer, train, where: str = "stage"):
        self.setup = setup
        self.spec = spec
        self.tokenizer = tokenizer
        self.train = train
        self.where = where
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
        iterator = make_sharded_pipeline(
            self.spec,
            self.tokenizer,
            batch_size=self.train.batch_size,
            seq_len=self.train.seq_len,
            num_shards=data_shards(self.train),
            rows=process_rows(self.rows, self.train.batch_size),
            seed=0,
            field=f"{self.where}.train.data_shards",
            where=f"{self.where}.eval_data",
        )
        total = None
        for _ in range(self.train.eval_batches):
            local = next(iterator, None)
            if not _every_process_has(local is not None):
                break  # finite eval data: stop when any process's shards run out
            batch = self.setup.complete_batch(global_batch(local, self.rows))
            if self._jitted is None:
                self._jitted = jax.jit(
                    self._eval_step,
                    in_shardings=(self.setup.shardings.params, {k: self.rows for k in batch}),
                )
            out = self._jitted(params, batch)
            total = out if total is None else metrics_lib.merge(total, out)
        iterator.close()
        if total is None:
            return {}
        return {
            f"eval/{k}": float(v) for k, v in jax.device_get(metrics_lib.compute(total)).items()
        }


def _every_process_has(value: bool) -> bool:
    """Whether `value` holds on every process (a collective when there are several), so that
    all of them stop reading at the same batch."""
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    return bool(np.all(multihost_utils.process_allgather(np.asarray(value, np.int32))))


def check_supervised_data(stage, spec, tokenizer, where: str, prefix: str) -> None:
    """Preflight: the spec builds, its first record becomes a training row, and it has a record
    for each logical data shard (`train.data_shards`)."""
    check_sharded_spec(
        spec, tokenizer, data_shards(stage.train), field=f"{prefix}.train.data_shards", where=where
    )


SUPERVISED_LOOP = register_loop(
    StageLoop(name="supervised", run=run_supervised_stage, check_data=check_supervised_data)
)
