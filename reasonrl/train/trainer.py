"""One trainer for every objective: a stage of a job, from config to checkpoints and metrics.

    result = run_stage(stage_config, workdir, tokenizer=tok)

Order of work: build the data pipeline and the model/optimizer state (both validate their
inputs), restore the newest readable checkpoint if there is one, then loop over jit-compiled
steps. The host never waits on a step except every `log_every` steps, when the metrics of
the steps since the last log are fetched together and written (TensorBoard, log, and
`metrics.jsonl`; eval results go to both as well, as "eval/<metric>").

Objectives that need more than decoder params declare it when they register (see
`reasonrl.objectives.registry`): `ParamsHooks` build / shard / export params that wrap the
decoder (the reward model's head), and a `ReferenceHook` adds fields computed under a frozen copy
of the stage's initial params to every train and eval batch (DPO's reference log-probs). That
copy is taken when the stage is built — from the model source, so a resumed run gets the same
reference — and lives beside the train state, sharded like the params, never checkpointed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from clu import metric_writers, parameter_overview, periodic_actions

from reasonrl import data as data_lib
from reasonrl import models
from reasonrl.models.layers import ActivationSharding
from reasonrl.objectives import ModelContext
from reasonrl.objectives import metrics as metrics_lib
from reasonrl.objectives.registry import get_objective
from reasonrl.parallel import batch_sharding, make_mesh
from reasonrl.train.checkpointing import Checkpointer
from reasonrl.train.config import objective_config
from reasonrl.train.exports import EXPORT_DIR
from reasonrl.train.optimizer import make_optimizer
from reasonrl.train.step import (StepConfig, TrainState, jit_train_step, make_train_step,
                                 state_shardings)

class NonFiniteLossError(RuntimeError):
    """Raised when the loss or gradient became NaN/inf and the run is configured to stop."""


@dataclasses.dataclass
class StageResult:
    workdir: Path
    export_dir: Path | None
    steps: int
    first_loss: float | None
    last_loss: float | None
    resumed_from: int | None


def _model_and_params(stage, mesh, tokenizer, stage_exports: dict[str, Path]):
    """(ModelConfig, params placed on the mesh) from init_from / hf_checkpoint / preset."""
    model_cfg = stage.model
    overrides = dict(model_cfg.overrides.to_dict() if hasattr(model_cfg.overrides, "to_dict")
                     else model_cfg.overrides)
    source = (stage_exports.get(model_cfg.init_from) if model_cfg.init_from
              else model_cfg.hf_checkpoint or None)
    if source:
        config, params = models.load_hf_checkpoint(source, mesh=mesh)
        structural = {k: v for k, v in overrides.items() if k in ("dtype", "remat")}
        if set(overrides) - set(structural):
            raise ValueError(f"model.overrides {sorted(set(overrides) - set(structural))} cannot "
                             f"change a loaded checkpoint (only dtype / remat)")
        return config.replace(**structural), params
    if model_cfg.vocab_from_tokenizer:
        overrides.setdefault("vocab_size", tokenizer.vocab_size)
    config = models.get_preset(model_cfg.preset, **overrides)
    if tokenizer.vocab_size > config.vocab_size:
        raise ValueError(f"tokenizer has {tokenizer.vocab_size} ids but model vocab_size is "
                         f"{config.vocab_size}")
    rng = jax.random.key(stage.train.seed)
    return config, models.init_params(config, jax.random.fold_in(rng, 1), mesh=mesh)


@dataclasses.dataclass
class _TrainingSetup:
    """Everything a stage's loop needs, built (and validated) before the first compilation."""

    model_config: models.ModelConfig
    objective: Any
    objective_config: Any
    model_ctx: ModelContext
    step_fn: Any
    shardings: TrainState
    abstract_state: TrainState  # ShapeDtypeStructs carrying their shardings (for restore)
    state: TrainState
    # Frozen copy of the initial params (sharded like them) when the objective registered a
    # ReferenceHook, and the function adding its fields to a global batch; else None.
    reference_params: Any = None
    add_reference: Callable[[dict], dict] | None = None

    def complete_batch(self, batch: dict) -> dict:
        """The global batch with the objective's reference fields added (if it has any)."""
        return batch if self.add_reference is None else self.add_reference(batch)


class _ReferenceFields:
    """batch -> batch plus the ReferenceHook's fields under the frozen reference params; one jit
    (explicit in/out shardings) per batch layout."""

    def __init__(self, hook, reference_params, param_shardings, model_ctx: ModelContext,
                 obj_config, mesh):
        self._fields = lambda params, batch: hook.fields(params, batch, model=model_ctx,  # noqa: E731
                                                         config=obj_config)
        self._params = reference_params
        self._param_shardings = param_shardings
        self._rows = batch_sharding(mesh)
        self._jitted: dict[tuple, Any] = {}

    def __call__(self, batch: dict) -> dict:
        keys = tuple(sorted(batch))
        if keys not in self._jitted:
            self._jitted[keys] = jax.jit(
                self._fields, in_shardings=(self._param_shardings, {k: self._rows for k in keys}),
                out_shardings=self._rows)
        return {**batch, **self._jitted[keys](self._params, batch)}


def _build_training(stage, mesh, tokenizer, stage_exports: dict[str, Path]) -> _TrainingSetup:
    """Model, objective, optimizer and a fresh train state placed in its shardings (plus the
    frozen reference params when the objective registered a ReferenceHook)."""
    model_config, decoder_params = _model_and_params(stage, mesh, tokenizer, stage_exports)
    registered = get_objective(stage.objective.name)
    obj_config = objective_config(stage)
    param_shardings = registered.params.shardings(
        model_config, models.param_shardings(model_config, mesh), mesh)
    params = jax.device_put(registered.params.build(
        model_config, decoder_params, jax.random.fold_in(jax.random.key(stage.train.seed), 2)),
        param_shardings)
    opt_cfg = stage.optimizer.copy_and_resolve_references()
    if opt_cfg.total_steps <= 0:
        opt_cfg.total_steps = stage.train.steps
    tx, schedule = make_optimizer(opt_cfg)
    model_ctx = ModelContext(model_config, ActivationSharding(mesh))
    step_fn = make_train_step(registered.fn, obj_config, model_ctx, tx, schedule,
                              StepConfig(stage.train.grad_accum, stage.train.on_nonfinite))

    reference_params = add_reference = None
    if registered.reference is not None:  # copied before `create` donates the params
        reference_params = jax.jit(lambda p: jax.tree.map(jnp.copy, p),
                                   out_shardings=param_shardings)(params)
        add_reference = _ReferenceFields(registered.reference, reference_params,
                                         param_shardings, model_ctx, obj_config, mesh)

    rng = jax.random.key(stage.train.seed)
    create = lambda p: TrainState.create(p, tx, rng)  # noqa: E731
    abstract = jax.eval_shape(create, params)
    shardings = state_shardings(abstract, param_shardings, mesh)
    state = jax.jit(create, out_shardings=shardings, donate_argnums=(0,))(params)
    abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                            abstract, shardings)
    return _TrainingSetup(model_config, registered, obj_config, model_ctx, step_fn, shardings,
                          abstract, state, reference_params, add_reference)


def _global_batch(local: dict, sharding) -> dict:
    """Per-host numpy batch -> global jax arrays sharded over the batch axes."""
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
            for k, v in local.items()}


class _MetricsLog:
    """Buffers per-step device metrics; writes them at log time in one host transfer."""

    def __init__(self, workdir: Path, writer, tokens_per_step: int):
        self.pending: list[tuple[int, dict]] = []
        self.writer = writer
        self.jsonl = open(workdir / "metrics.jsonl", "a") if jax.process_index() == 0 else None
        self.tokens_per_step = tokens_per_step
        self.last_time = time.time()
        self.first_loss: float | None = None
        self.last_loss: float | None = None

    def add(self, step: int, metrics: dict) -> None:
        self.pending.append((step, metrics))

    def flush(self, prefix: str = "train") -> None:
        if not self.pending:
            return
        fetched = jax.device_get([m for _, m in self.pending])
        now = time.time()
        steps_per_sec = len(self.pending) / max(now - self.last_time, 1e-9)
        self.last_time = now
        for (step, _), values in zip(self.pending, fetched):
            scalars = {f"{prefix}/{k}": float(v) for k, v in values.items()}
            self.writer.write_scalars(step, scalars)
            if self.jsonl:
                self.jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
            if prefix == "train":
                if self.first_loss is None:
                    self.first_loss = float(values["loss"])
                self.last_loss = float(values["loss"])
        last_step = self.pending[-1][0]
        self.writer.write_scalars(last_step, {
            "perf/steps_per_sec": steps_per_sec,
            "perf/tokens_per_sec": steps_per_sec * self.tokens_per_step})
        if self.jsonl:
            self.jsonl.flush()
        self.pending.clear()

    def write(self, step: int, scalars: dict[str, float]) -> None:
        """One record of already-fetched scalars (e.g. eval results) into metrics.jsonl."""
        if self.jsonl and scalars:
            self.jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
            self.jsonl.flush()

    def close(self) -> None:
        self.writer.flush()
        if self.jsonl:
            self.jsonl.close()


def _make_eval_step(setup: _TrainingSetup, mesh, batch_keys):
    """jit of the objective without gradients: (params, batch) -> loss sum, denominator, metrics."""
    def eval_step(params, batch):
        loss_sum, denominator, metrics = setup.objective.fn(
            params, batch, jax.random.key(0), model=setup.model_ctx,
            config=setup.objective_config)
        return {"loss_sum": loss_sum, "denominator": denominator, "metrics": metrics}

    rows = batch_sharding(mesh)
    return jax.jit(eval_step, in_shardings=(setup.shardings.params, {k: rows for k in batch_keys}))


def run_stage(stage, workdir: str | Path, *, tokenizer, tokenizer_files: tuple[Path, ...] = (),
              stage_exports: dict[str, Path] | None = None,
              max_steps: int | None = None) -> StageResult:
    """Trains one stage in `workdir` (resuming from its newest readable checkpoint).

    Args:
      stage: a validated stage config (see `reasonrl.train.config.stage_config`).
      tokenizer: a `reasonrl.data.Tokenizer`; `tokenizer_files` are copied into the export.
      stage_exports: exports of earlier stages, by name, for `model.init_from`.
      max_steps: stop after this step (the schedule still follows `train.steps`).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    train = stage.train
    mesh = make_mesh(stage.mesh.to_dict())
    process_count = jax.process_count()
    per_host_batch = train.batch_size // process_count

    data_iter = data_lib.make_pipeline(stage.data, tokenizer, batch_size=per_host_batch,
                                       seq_len=train.seq_len, seed=train.seed)
    eval_spec = stage.eval_data.to_dict() if stage.eval_data else None

    setup = _build_training(stage, mesh, tokenizer, stage_exports or {})
    state = setup.state

    checkpointer = Checkpointer(workdir / "checkpoints", save_every=train.checkpoint_every,
                                keep=train.keep_checkpoints, async_save=train.async_checkpointing)
    restored = checkpointer.restore_latest(setup.abstract_state)
    resumed_from = None
    if restored is not None:
        resumed_from, state, data_state = restored
        data_lib.restore_iterator_state(data_iter, data_state["iterator"].encode())
        logging.info("resumed from step %d", resumed_from)
        print(f"[{workdir.name}] resumed from checkpoint step {resumed_from}", flush=True)

    is_main = jax.process_index() == 0
    writer = metric_writers.create_default_writer(
        str(workdir / "tensorboard"), just_logging=not is_main, asynchronous=True)
    if resumed_from is None and is_main:
        print(f"[{workdir.name}] {setup.model_config.architecture} model, parameters:\n"
              f"{parameter_overview.get_parameter_overview(state.params)}", flush=True)
        writer.write_hparams({"num_params": models.num_params(setup.model_config),
                              "objective": stage.objective.name})
    log = _MetricsLog(workdir, writer, train.batch_size * train.seq_len)
    report = periodic_actions.ReportProgress(num_train_steps=train.steps, writer=writer,
                                             every_steps=train.log_every)

    batch_keys = None
    jitted = None
    eval_fn = None
    step = int(jax.device_get(state.step))
    end = train.steps if max_steps is None else min(train.steps, max_steps)
    progress = _progress_bar(step, train.steps, workdir.name) if is_main else None
    skipped = 0  # non-finite updates already reported
    rows = batch_sharding(mesh)
    try:
        while step < end:
            batch = setup.complete_batch(_global_batch(next(data_iter), rows))
            if jitted is None:
                batch_keys = tuple(sorted(batch))
                jitted = jit_train_step(setup.step_fn, setup.shardings, mesh, batch_keys)
            state, metrics = jitted(state, batch)
            log.add(step, metrics)
            step += 1
            report(step)
            if progress is not None:
                progress.update(1)
            if step % train.log_every == 0 or step == end:
                log.flush()
                skipped = _check_finite(state, train.on_nonfinite, skipped)
                if progress is not None and log.last_loss is not None:
                    progress.set_postfix(loss=f"{log.last_loss:.4f}")
            if eval_spec and train.eval_every and step % train.eval_every == 0:
                eval_fn = eval_fn or _make_eval_step(setup, mesh, batch_keys)
                log.write(step, _evaluate(eval_fn, state.params, eval_spec, tokenizer, train,
                                          rows, writer, step, setup.complete_batch))
            if step % train.checkpoint_every == 0 or step == train.steps:
                skipped = _check_finite(state, train.on_nonfinite, skipped)
                checkpointer.save(step, state, {"iterator": data_lib.iterator_state_to_bytes(
                    data_iter).decode()}, force=step == train.steps)
        log.flush()
    finally:
        _close(progress, checkpointer, log)

    export_dir = None
    if train.export_hf and step == train.steps:
        export_dir = export_stage(setup, state.params, workdir, tokenizer_files)
    return StageResult(workdir, export_dir, step, log.first_loss, log.last_loss, resumed_from)


def _close(progress, checkpointer: Checkpointer, log: _MetricsLog) -> None:
    """Ends a stage's loop: the progress bar, pending checkpoint writes, the metric files."""
    if progress is not None:
        progress.close()
    checkpointer.close()
    log.close()


def export_stage(setup: _TrainingSetup, params, workdir: Path,
                 tokenizer_files: tuple[Path, ...] = ()) -> Path:
    """Writes `workdir/export`: the decoder as a Hugging Face checkpoint, the objective's extra
    files (e.g. a reward head) and the tokenizer files. Returns the directory."""
    export_dir = workdir / EXPORT_DIR
    hooks = setup.objective.params
    models.save_hf_checkpoint(setup.model_config, hooks.decoder(params), export_dir)
    hooks.save_extra(setup.model_config, params, export_dir)
    if jax.process_index() == 0:
        for file in tokenizer_files:
            shutil.copy2(file, export_dir / Path(file).name)
    return export_dir


def _check_finite(state: TrainState, mode: str, already_reported: int = 0) -> int:
    """Raises NonFiniteLossError in "stop" mode once a step was non-finite; in "skip" mode warns
    when more updates were skipped than `already_reported`. Returns the skipped count."""
    first_bad, skipped = (int(x) for x in jax.device_get(
        (state.first_nonfinite_step, state.skipped_steps)))
    if first_bad < 0:
        return skipped
    if mode == "stop":
        raise NonFiniteLossError(
            f"loss or gradient became non-finite at step {first_bad}; the run stopped and the "
            f"params are those before step {first_bad} (set train.on_nonfinite='skip' to drop "
            f"such updates and continue)")
    if skipped > already_reported:
        logging.warning("%d updates skipped for non-finite loss/gradient (first at step %d)",
                        skipped, first_bad)
    return skipped


def _evaluate(eval_fn, params, spec, tokenizer, train, rows, writer, step,
              complete_batch: Callable[[dict], dict] | None = None) -> dict[str, float]:
    """Mean eval loss and metrics over `train.eval_batches` batches of a fresh eval iterator;
    `complete_batch` adds fields the objective needs (`_TrainingSetup.complete_batch`)."""
    iterator = data_lib.make_pipeline(spec, tokenizer, batch_size=train.batch_size //
                                      jax.process_count(), seq_len=train.seq_len, seed=0)
    total = None
    for _ in range(train.eval_batches):
        try:
            batch = _global_batch(next(iterator), rows)
        except StopIteration:
            break
        if complete_batch is not None:
            batch = complete_batch(batch)
        out = eval_fn(params, batch)
        out = {"loss": metrics_lib.Mean.of(out["loss_sum"], out["denominator"]), **out["metrics"]}
        total = out if total is None else metrics_lib.merge(total, out)
    if total is None:
        return {}
    values = {f"eval/{k}": float(v) for k, v in jax.device_get(metrics_lib.compute(total)).items()}
    writer.write_scalars(step, values)
    return values


def _progress_bar(start: int, total: int, name: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc=name, unit="step", dynamic_ncols=True,
                mininterval=1.0)


