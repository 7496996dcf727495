"""The stage engine: everything a stage loop shares, so a loop only says what one step does.

A loop (see `reasonrl.train.loops`) builds its stage, then runs its steps inside a `StageRun`:

    setup = build_stage(stage, mesh, tokenizer, stage_exports, total_updates=...)
    with StageRun(stage, workdir, setup, iterator=data_iter, ...) as run:
        while run.step < run.end:
            batch = setup.complete_batch(global_batch(next(data_iter), rows))
            run.state, metrics = setup.train_step(batch)(run.state, batch)
            run.add_update(metrics)
            run.end_step()
    result = run.result

What the engine owns:
- build (`build_stage`): the model and its params (`load_model`: an earlier stage's export, a
  Hugging Face checkpoint or a preset's fresh init), the objective and its options, the
  optimizer, the train state placed in its shardings (with the objective's own state when it
  registered a `StateHook`, e.g. RLP's EMA teacher: checkpointed with the params), and the
  frozen reference params when the objective registered a `ReferenceHook` it needs
  (`Reference`: a copy of the initial params, re-derived from the model source on resume,
  never checkpointed);
- resume: the newest readable orbax checkpoint (train state + the loop's iterator state; a
  checkpoint of another model shape is refused, see `reasonrl.train.checkpointing`). A
  `reasonrl.data.layout.ShardedBatchIterator` (the supervised loop's) holds only this process's
  logical data shards: at each checkpoint every process's shard states are gathered into the one
  JSON state process 0 saves, and on resume each process takes its own shards from it, so a
  checkpoint restores bit for bit in any process count;
- logs: clu writers (TensorBoard), `metrics.jsonl` (`MetricsLog`, one host transfer per
  `log_every` steps and at each checkpoint; on resume the records of the steps run again are
  dropped first, so every (step, key) appears once), `ReportProgress` and a progress bar;
- the non-finite policy (`check_finite`: "stop" raises `NonFiniteLossError`, "skip" warns);
- checkpoints every `train.checkpoint_every` loop steps and at the last one;
- periodic evaluation through the loop's `evaluate(params) -> {name: value}` callback;
- the export (`StageSetup.export`): a Hugging Face checkpoint + the objective's extra files +
  the tokenizer files.

A loop step may make several optimizer updates (the rl loop's minibatches): `updates_per_step`.
Checkpoints and metrics are indexed by optimizer update; `run.step` counts loop steps.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from clu import metric_writers, parameter_overview, periodic_actions

from reasonrl import data as data_lib
from reasonrl import models
from reasonrl.data.layout import ShardedBatchIterator, merge_shard_states
from reasonrl.errors import ReasonRLError
from reasonrl.models.layers import ActivationSharding
from reasonrl.objectives import ModelContext, token_statistics
from reasonrl.objectives.registry import RegisteredObjective, get_objective
from reasonrl.parallel import batch_sharding
from reasonrl.train.checkpointing import CHECKPOINTS_DIR, Checkpointer, gather_process_bytes
from reasonrl.train.config import objective_config
from reasonrl.train.exports import EXPORT_DIR
from reasonrl.train.optimizer import make_optimizer
from reasonrl.train.step import (
    StepConfig,
    TrainState,
    jit_train_step,
    make_train_step,
    state_shardings,
)
from reasonrl.workdir import atomic_write_text

METRICS_FILE = "metrics.jsonl"
UPDATE_PREFIX = "train/"  # the keys of an optimizer update's record in metrics.jsonl
# ModelConfig fields that change how a model computes, not its parameters: a loaded checkpoint
# may override them.
_RUNTIME_MODEL_FIELDS = ("dtype", "remat", "attention", "attention_q_block", "attention_kv_block")


class NonFiniteLossError(ReasonRLError, RuntimeError):
    """Raised when the loss or gradient became NaN/inf and the run is configured to stop."""


@dataclasses.dataclass
class StageResult:
    """What a stage run leaves: its directory, export, loop steps done and train loss range."""

    workdir: Path
    export_dir: Path | None
    steps: int
    first_loss: float | None
    last_loss: float | None
    resumed_from: int | None


def load_model(stage, mesh, tokenizer, stage_exports: dict[str, Path]):
    """(ModelConfig, decoder params placed on the mesh) from init_from / hf_checkpoint / preset.

    A fresh model takes the tokenizer's vocabulary size (`model.vocab_from_tokenizer`) and is
    initialised from key fold_in(key(train.seed), 1).
    """
    model_cfg = stage.model
    overrides = dict(
        model_cfg.overrides.to_dict()
        if hasattr(model_cfg.overrides, "to_dict")
        else model_cfg.overrides
    )
    source = (
        stage_exports.get(model_cfg.init_from)
        if model_cfg.init_from
        else model_cfg.hf_checkpoint or None
    )
    if source:
        config, params = models.load_hf_checkpoint(source, mesh=mesh)
        structural = {k: v for k, v in overrides.items() if k in _RUNTIME_MODEL_FIELDS}
        if set(overrides) - set(structural):
            raise ValueError(
                f"model.overrides {sorted(set(overrides) - set(structural))} cannot "
                f"change a loaded checkpoint (only {' / '.join(_RUNTIME_MODEL_FIELDS)})"
            )
        return config.replace(**structural), params
    if model_cfg.vocab_from_tokenizer:
        overrides.setdefault("vocab_size", tokenizer.vocab_size)
    config = models.get_preset(model_cfg.preset, **overrides)
    if tokenizer.vocab_size > config.vocab_size:
        raise ValueError(
            f"tokenizer has {tokenizer.vocab_size} ids but model vocab_size is {config.vocab_size}"
        )
    rng = jax.random.key(stage.train.seed)
    return config, models.init_params(config, jax.random.fold_in(rng, 1), mesh=mesh)


class BatchFields:
    """(params, batch) -> the batch plus `fields(params, batch)`; one jit (explicit in/out
    shardings: params as given, every batch field over the batch axes) per batch layout."""

    def __init__(self, fields: Callable[[Any, dict], dict], param_shardings, mesh):
        self._fields = fields
        self._param_shardings = param_shardings
        self._rows = batch_sharding(mesh)
        self._jitted: dict[tuple, Any] = {}

    def __call__(self, params, batch: dict) -> dict:
        keys = tuple(sorted(batch))
        if keys not in self._jitted:
            self._jitted[keys] = jax.jit(
                self._fields,
                in_shardings=(self._param_shardings, {k: self._rows for k in keys}),
                out_shardings=self._rows,
            )
        return {**batch, **self._jitted[keys](params, batch)}


@dataclasses.dataclass
class Reference:
    """The frozen reference params (sharded like the trainable ones) and the objective's
    `ReferenceHook` fields under them."""

    params: Any
    fields: BatchFields

    def complete(self, batch: dict) -> dict:
        return self.fields(self.params, batch)


@dataclasses.dataclass
class StageSetup:
    """Everything a stage's loop needs, built (and validated) before the first compilation."""

    mesh: Any
    model_config: models.ModelConfig
    objective: RegisteredObjective
    objective_config: Any
    model_ctx: ModelContext
    step_fn: Callable
    shardings: TrainState
    abstract_state: TrainState  # ShapeDtypeStructs carrying their shardings (for restore)
    state: TrainState
    reference: Reference | None = None
    _jitted_steps: dict = dataclasses.field(default_factory=dict)

    def complete_batch(self, batch: dict) -> dict:
        """The global batch with the objective's reference fields added (if it needs them)."""
        return batch if self.reference is None else self.reference.complete(batch)

    def train_step(self, batch: dict) -> Callable:
        """The jitted `(state, batch) -> (state, metrics)` for this batch's fields (the state
        is donated)."""
        keys = tuple(sorted(batch))
        if keys not in self._jitted_steps:
            self._jitted_steps[keys] = jit_train_step(self.step_fn, self.shardings, self.mesh, keys)
        return self._jitted_steps[keys]

    def export(self, params, workdir: Path, tokenizer_files: tuple[Path, ...] = ()) -> Path:
        """Writes `workdir/export`: the decoder as a Hugging Face checkpoint, the objective's
        extra files (e.g. a reward head) and the tokenizer files. Returns the directory."""
        export_dir = Path(workdir) / EXPORT_DIR
        hooks = self.objective.params
        models.save_hf_checkpoint(self.model_config, hooks.decoder(params), export_dir)
        hooks.save_extra(self.model_config, params, export_dir)
        if jax.process_index() == 0:
            for file in tokenizer_files:
                shutil.copy2(file, export_dir / Path(file).name)
        return export_dir


def build_stage(
    stage, mesh, tokenizer, stage_exports: dict[str, Path], *, total_updates: int
) -> StageSetup:
    """Model, objective, optimizer (its schedule over `total_updates` optimizer updates unless
    `optimizer.total_steps` is set) and a fresh train state placed in its shardings, plus the
    frozen reference when the objective needs one."""
    model_config, decoder_params = load_model(stage, mesh, tokenizer, stage_exports)
    registered = get_objective(stage.objective.name)
    obj_config = objective_config(stage)
    param_shardings = registered.params.shardings(
        model_config, models.param_shardings(model_config, mesh), mesh
    )
    params = jax.device_put(
        registered.params.build(
            model_config, decoder_params, jax.random.fold_in(jax.random.key(stage.train.seed), 2)
        ),
        param_shardings,
    )
    opt_cfg = stage.optimizer.copy_and_resolve_references()
    if opt_cfg.total_steps <= 0:
        opt_cfg.total_steps = total_updates
    tx, schedule = make_optimizer(opt_cfg)
    model_ctx = ModelContext(model_config, ActivationSharding(mesh))
    state_hook = registered.state
    step_fn = make_train_step(
        registered.fn,
        obj_config,
        model_ctx,
        tx,
        schedule,
        StepConfig(stage.train.grad_accum, stage.train.on_nonfinite),
        update_extra=(
            None if state_hook is None else lambda extra, p: state_hook.update(extra, p, obj_config)
        ),
    )

    reference = None
    if registered.needs_reference(obj_config):  # copied before `create` donates the params
        hook = registered.reference
        reference = Reference(
            jax.jit(lambda p: jax.tree.map(jnp.copy, p), out_shardings=param_shardings)(params),
            BatchFields(
                lambda p, batch: hook.fields(p, batch, model=model_ctx, config=obj_config),
                param_shardings,
                mesh,
            ),
        )

    rng = jax.random.key(stage.train.seed)

    def create(p):
        extra = None if state_hook is None else state_hook.init(p, obj_config)
        return TrainState.create(p, tx, rng, extra)

    abstract = jax.eval_shape(create, params)
    shardings = state_shardings(
        abstract,
        param_shardings,
        mesh,
        None if state_hook is None else state_hook.shardings(param_shardings, mesh),
    )
    state = jax.jit(create, out_shardings=shardings, donate_argnums=(0,))(params)
    abstract = jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings
    )
    return StageSetup(
        mesh,
        model_config,
        registered,
        obj_config,
        model_ctx,
        step_fn,
        shardings,
        abstract,
        state,
        reference,
    )


SCORED_FIELDS = ("tokens", "targets", "positions", "segment_ids")


def make_token_scorer(setup: StageSetup, temperature: float, chunk_size: int):
    """jit of (params, batch) -> log p(batch["targets"]) float32 [B, T] at `temperature`, no
    gradient; `batch` holds the SCORED_FIELDS over the batch axes. The params may be any
    pytree sharded like the trainable ones (e.g. π_old, an EMA teacher)."""

    def score(params, batch):
        hidden = setup.model_ctx.hidden(params, batch)
        return token_statistics(
            setup.model_config,
            params,
            hidden,
            batch["targets"],
            chunk_size=chunk_size,
            temperature=temperature,
            sharding=setup.model_ctx.sharding,
        ).logprobs

    rows = batch_sharding(setup.mesh)
    return jax.jit(
        score,
        in_shardings=(setup.shardings.params, {k: rows for k in SCORED_FIELDS}),
        out_shardings=rows,
    )


def global_batch(local: dict, sharding) -> dict:
    """Per-host numpy batch -> global jax arrays sharded over the batch axes."""
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local.items()
    }


def process_rows(sharding, batch_size: int) -> tuple[int, ...]:
    """The global batch rows (ascending) that this process's devices hold under the batch
    `sharding`: the rows its local batch must give `global_batch`, in this order
    (`jax.make_array_from_process_local_data` maps the local rows onto them in ascending
    order). Processes holding replicas of the same rows get the same tuple."""
    rows: set[int] = set()
    for index in sharding.addressable_devices_indices_map((batch_size,)).values():
        rows.update(range(*index[0].indices(batch_size)))
    return tuple(sorted(rows))


def _written_before(line: str, resumed_from: int | None) -> bool:
    """Whether a metrics.jsonl record was written before the checkpoint of update
    `resumed_from` (None: no checkpoint). An update's record has step = its index, so the
    update `resumed_from` is run again; a step-end record (eval, loop values) has step =
    updates done, so the one at `resumed_from` was written just before that checkpoint."""
    try:
        record = json.loads(line)
    except ValueError:  # a line torn by a kill mid-write
        return False
    if resumed_from is None:
        return False
    is_update = any(key.startswith(UPDATE_PREFIX) for key in record)
    return record["step"] < resumed_from or (record["step"] == resumed_from and not is_update)


def drop_rerun_records(path: Path, resumed_from: int | None) -> None:
    """Removes from metrics.jsonl the records of the steps a resumed run does again (all of
    them when it starts over), so that every (step, key) appears once. Rewritten atomically."""
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    kept = [line for line in lines if _written_before(line, resumed_from)]
    if kept != lines:
        atomic_write_text(path, "".join(f"{line}\n" for line in kept))


class MetricsLog:
    """Buffers per-update device metrics and writes them at log time in one host transfer, to
    the clu writer and `metrics.jsonl` (as "train/<name>", `UPDATE_PREFIX`); `write` adds
    already-fetched scalars (eval results, a loop step's own values: keys without that prefix).

    On process 0 only, it first drops the records of the steps run again after the checkpoint
    of update `resumed_from` (all of them when None: the run starts over;
    `drop_rerun_records`), then appends.
    """

    def __init__(self, workdir: Path, writer, tokens_per_update: int, *, resumed_from: int | None):
        self.pending: list[tuple[int, dict]] = []
        self.writer = writer
        self.jsonl = None
        if jax.process_index() == 0:
            path = Path(workdir) / METRICS_FILE
            drop_rerun_records(path, resumed_from)
            self.jsonl = open(path, "a")
        self.tokens_per_update = tokens_per_update
        self.last_time = time.time()
        self.first_loss: float | None = None
        self.last_loss: float | None = None

    def add(self, update: int, metrics: dict) -> None:
        self.pending.append((update, metrics))

    def flush(self) -> None:
        if not self.pending:
            return
        fetched = jax.device_get([m for _, m in self.pending])
        now = time.time()
        updates_per_sec = len(self.pending) / max(now - self.last_time, 1e-9)
        self.last_time = now
        for (update, _), values in zip(self.pending, fetched):
            scalars = {f"{UPDATE_PREFIX}{k}": float(v) for k, v in values.items()}
            self.writer.write_scalars(update, scalars)
            self._append(update, scalars)
            if self.first_loss is None:
                self.first_loss = float(values["loss"])
            self.last_loss = float(values["loss"])
        self.writer.write_scalars(
            self.pending[-1][0],
            {
                "perf/steps_per_sec": updates_per_sec,
                "perf/tokens_per_sec": updates_per_sec * self.tokens_per_update,
            },
        )
        if self.jsonl:
            self.jsonl.flush()
        self.pending.clear()

    def write(self, update: int, scalars: dict[str, float]) -> None:
        """Already-fetched scalars to the writer and as one record of metrics.jsonl."""
        if scalars:
            self.writer.write_scalars(update, scalars)
            self._append(update, scalars)
            if self.jsonl:
                self.jsonl.flush()

    def _append(self, update: int, scalars: dict[str, float]) -> None:
        if self.jsonl:
            self.jsonl.write(json.dumps({"step": update, **scalars}) + "\n")

    def close(self) -> None:
        self.writer.flush()
        if self.jsonl:
            self.jsonl.close()


def check_finite(state: TrainState, mode: str, already_reported: int = 0) -> int:
    """Raises NonFiniteLossError in "stop" mode once an update was non-finite; in "skip" mode
    warns when more updates were skipped than `already_reported`. Returns the skipped count."""
    first_bad, skipped = (
        int(x) for x in jax.device_get((state.first_nonfinite_step, state.skipped_steps))
    )
    if first_bad < 0:
        return skipped
    if mode == "stop":
        raise NonFiniteLossError(
            f"loss or gradient became non-finite at step {first_bad}; the run stopped and the "
            f"params are those before step {first_bad} (set train.on_nonfinite='skip' to drop "
            f"such updates and continue)"
        )
    if skipped > already_reported:
        logging.warning(
            "%d updates skipped for non-finite loss/gradient (first at step %d)", skipped, first_bad
        )
    return skipped


class StageRun:
    """One run of a stage's loop in its workdir: resume, logs, non-finite checks, evaluation,
    checkpoints and the export, around the loop's own steps (see the module docstring).

    Args:
      stage: the validated stage config.
      workdir: the stage's directory (created).
      setup: the built stage (`build_stage`); its fresh state is replaced by a restored one.
      iterator: the loop's grain iterator, whose state is checkpointed and restored with the
        train state.
      tokens_per_update: tokens of one optimizer update (for tokens/s).
      updates_per_step: optimizer updates per loop step.
      max_steps: stop after this loop step (the schedule still follows `train.steps`).
      evaluate: params -> {name: value}, run every `train.eval_every` loop steps and at the
        last one (and before the first step with `evaluate_at_start`).
      step_key: when set, every record of loop-step values carries {step_key: loop step}.
      tokenizer_files: copied into the export.
    """

    def __init__(
        self,
        stage,
        workdir: str | Path,
        setup: StageSetup,
        *,
        iterator,
        tokens_per_update: int,
        updates_per_step: int = 1,
        max_steps: int | None = None,
        evaluate: Callable[[Any], dict[str, float]] | None = None,
        evaluate_at_start: bool = False,
        step_key: str | None = None,
        tokenizer_files: tuple[Path, ...] = (),
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.train = stage.train
        self.setup = setup
        self.iterator = iterator
        self.updates_per_step = updates_per_step
        self.evaluate = evaluate if self.train.eval_every else None
        self.step_key = step_key
        self.tokenizer_files = tokenizer_files
        self.result: StageResult | None = None

        self.checkpointer = Checkpointer(
            self.workdir / CHECKPOINTS_DIR,
            save_every=self.train.checkpoint_every * updates_per_step,
            keep=self.train.keep_checkpoints,
            async_save=self.train.async_checkpointing,
        )
        self.state = setup.state
        try:
            self.resumed_from = self._restore()
        except BaseException:
            self.checkpointer.close()
            raise
        self.step = int(jax.device_get(self.state.step)) // updates_per_step
        self.update = self.step * updates_per_step
        self.end = self.train.steps if max_steps is None else min(self.train.steps, max_steps)

        self.is_main = jax.process_index() == 0
        writer = metric_writers.create_default_writer(
            str(self.workdir / "tensorboard"), just_logging=not self.is_main, asynchronous=True
        )
        if self.resumed_from is None and self.is_main:
            print(
                f"[{self.workdir.name}] {setup.model_config.architecture} model, parameters:\n"
                # Stats fetch every parameter to this host: one process only (multi-host
                # parameters span devices this process cannot read).
                + parameter_overview.get_parameter_overview(
                    self.state.params, include_stats=jax.process_count() == 1
                ),
                flush=True,
            )
            writer.write_hparams(
                {
                    "num_params": models.num_params(setup.model_config),
                    "objective": stage.objective.name,
                }
            )
        self.log = MetricsLog(
            self.workdir, writer, tokens_per_update, resumed_from=self.resumed_from
        )
        self._report = periodic_actions.ReportProgress(
            num_train_steps=self.train.steps * updates_per_step,
            writer=writer,
            every_steps=self.train.log_every * updates_per_step,
        )
        self._progress = (
            _progress_bar(self.step, self.train.steps, self.workdir.name) if self.is_main else None
        )
        self._skipped = 0  # non-finite updates already reported
        if self.evaluate is not None and evaluate_at_start and self.step == 0:
            self.log.write(0, self._step_values({}, self.evaluate(self.state.params)))

    def _restore(self) -> int | None:
        restored = self.checkpointer.restore_latest(self.setup.abstract_state)
        if restored is None:
            return None
        update, self.state, data_state = restored
        data_lib.restore_iterator_state(self.iterator, data_state["iterator"].encode())
        logging.info("resumed from update %d", update)
        print(f"[{self.workdir.name}] resumed from checkpoint step {update}", flush=True)
        return update

    def _iterator_state(self) -> str:
        """The data iterator state to checkpoint (JSON). A `ShardedBatchIterator` holds only
        this process's logical data shards: every process's are gathered and merged (a
        collective), so the checkpoint holds every shard and restores in any process count.
        Another iterator (identical on every process) is saved as process 0 has it."""
        local = data_lib.iterator_state_to_bytes(self.iterator)
        if not isinstance(self.iterator, ShardedBatchIterator):
            return local.decode()
        states = [json.loads(state) for state in gather_process_bytes(local)]
        return json.dumps(merge_shard_states(states), sort_keys=True)

    def _step_values(self, values: dict[str, float], evaluated: dict[str, float]) -> dict:
        out = dict(values, **evaluated)
        if self.step_key and out:
            out[self.step_key] = self.step
        return out

    def __enter__(self) -> StageRun:
        return self

    def add_update(self, metrics: dict) -> None:
        """Records one optimizer update's (device) metrics; fetched at the next log time."""
        self.log.add(self.update, metrics)
        self.update += 1
        self._report(self.update)

    def minibatch_updates(self, batch: dict, *, num_minibatches: int, update_epochs: int) -> None:
        """`update_epochs` passes over a loop step's `batch` (global arrays [R, ...]), each
        split into `num_minibatches` minibatches of shuffled rows (by (train.seed, step,
        epoch), so a resumed run shuffles alike), one optimizer update per minibatch."""
        rows = len(next(iter(batch.values())))
        sharding = batch_sharding(self.setup.mesh)
        for epoch in range(update_epochs):
            order = np.random.default_rng((self.train.seed, self.step, epoch)).permutation(rows)
            for part in np.split(order, num_minibatches):
                minibatch = jax.device_put({k: v[part] for k, v in batch.items()}, sharding)
                self.state, metrics = self.setup.train_step(minibatch)(self.state, minibatch)
                self.add_update(metrics)

    def end_step(
        self, values: dict[str, float] | None = None, postfix: dict[str, str] | None = None
    ) -> None:
        """Closes loop step `self.step`: counts it, logs the loop's own `values` (with any eval
        results) at the step's last update, and checks, evaluates and checkpoints on schedule."""
        self.step += 1
        train = self.train
        last = self.step == self.end
        if self.step % train.log_every == 0 or last:
            self.log.flush()
            self._skipped = check_finite(self.state, train.on_nonfinite, self._skipped)
        evaluated = {}
        if self.evaluate is not None and (self.step % train.eval_every == 0 or last):
            evaluated = self.evaluate(self.state.params)
        self.log.write(self.update, self._step_values(values or {}, evaluated))
        if self._progress is not None:
            self._progress.update(1)
            if postfix is None and self.log.last_loss is not None:
                postfix = {"loss": f"{self.log.last_loss:.4f}"}
            if postfix:
                self._progress.set_postfix(postfix)
        if self.step % train.checkpoint_every == 0 or self.step == train.steps:
            self.log.flush()  # a checkpoint's updates are on disk before it: a resume keeps them
            self._skipped = check_finite(self.state, train.on_nonfinite, self._skipped)
            self.checkpointer.save(
                self.update,
                self.state,
                {"iterator": self._iterator_state()},
                force=self.step == train.steps,
            )

    def __exit__(self, exc_type, exc, traceback) -> None:
        try:
            if exc_type is None:
                self.log.flush()
        finally:
            if self._progress is not None:
                self._progress.close()
            self.checkpointer.close()
            self.log.close()
        if exc_type is not None:
            return
        export_dir = None
        if self.train.export_hf and self.step == self.train.steps:
            export_dir = self.setup.export(self.state.params, self.workdir, self.tokenizer_files)
        self.result = StageResult(
            self.workdir,
            export_dir,
            self.step,
            self.log.first_loss,
            self.log.last_loss,
            self.resumed_from,
        )


def _progress_bar(start: int, total: int, name: str):
    from tqdm.auto import tqdm

    return tqdm(
        total=total, initial=start, desc=name, unit="step", dynamic_ncols=True, mininterval=1.0
    )
