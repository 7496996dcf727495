"""The RL loop (GRPO / Dr. GRPO / DAPO): a stage with `loop = "rl"`.

Each rollout step, in order:

  1. prompts      next batch of `train.batch_size` prompts (grain, checkpointed state);
  2. sample       G = rl.group_size samples per prompt with the current params, one shared
                  prefill per prompt (reasonrl.sampling.generate, num_samples=G);
  3. rewards      the grader's correctness (+ format, length and overlong terms);
                  with rl.dynamic_sampling, groups whose rewards are all equal are dropped and
                  more prompts sampled (at most rl.max_rollout_rounds rounds);
  4. advantages   by name (rl.advantage: grpo | drgrpo | rloo) within each group;
  5. updates      mu = rl.num_minibatches * rl.update_epochs optimizer steps of the objective
                  (policy_gradient) on shuffled minibatches of the rollout, against the
                  rollout policy's log-probs recomputed once before the first update
                  (skipped when mu = 1: then pi_old = sg(pi_theta) exactly) and, when
                  objective.kl_coef > 0, the frozen initial params' log-probs;
  6. log          rollout metrics (reward and each term, accuracy, response length, truncation,
                  dynamic-sampling counts, time of each phase) next to the update metrics
                  (loss, clip fractions, KL, entropy, ratio extremes, sampler-vs-trainer
                  log-prob gap);
  7. checkpoint   every train.checkpoint_every rollout steps (train state + prompt iterator).

The sampling key of step s and round r is fold_in(fold_in(run key, s), r) and minibatches are
shuffled by (train.seed, s, epoch), so a run killed and restarted continues exactly as it
would have. At the end the final params are exported (HF safetensors) and the reward curve is
drawn to `learning_curve.png`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np
from absl import logging
from clu import metric_writers

from reasonrl.data.prompt_templates import stop_token_ids
from reasonrl.objectives.logprobs import token_statistics
from reasonrl.parallel import batch_sharding, make_mesh
from reasonrl.rl.advantages import get_advantage_estimator
from reasonrl.rl.dynamic_sampling import DynamicSamplingBuffer
from reasonrl.data.prompt_pipeline import make_prompt_pipeline
from reasonrl.rl.rollout import RolloutSettings, sample_rollout, score_rollout, train_batch
from reasonrl.data import iterator_state_to_bytes, restore_iterator_state
from reasonrl.train.checkpointing import Checkpointer
from reasonrl.train.step import jit_train_step
from reasonrl.train.trainer import (StageResult, _build_training, _check_finite, _close,
                                    _global_batch, _MetricsLog, _model_and_params, _progress_bar,
                                    export_stage)

CURVE_FILE = "learning_curve.png"
SCORED_FIELDS = ("tokens", "targets", "positions", "segment_ids")


def make_token_scorer(setup, mesh, temperature: float, chunk_size: int):
    """jit of (params, batch) -> log p(targets) float32 [B, T] (no gradient), for pi_old / pi_ref."""
    def score(params, batch):
        hidden = setup.model_ctx.hidden(params, batch)
        return token_statistics(setup.model_config, params, hidden, batch["targets"],
                                chunk_size=chunk_size, temperature=temperature,
                                sharding=setup.model_ctx.sharding).logprobs

    rows = batch_sharding(mesh)
    return jax.jit(score, in_shardings=(setup.shardings.params,
                                        {k: rows for k in SCORED_FIELDS}), out_shardings=rows)


def _collect(state, prompts_iter, settings, setup, tokenizer, rl, num_prompts: int, key):
    """Rollout rounds until `num_prompts` groups are ready; (rollout, counts, timings)."""
    params = state.params
    timings = {"sample": 0.0, "reward": 0.0}
    buffer = DynamicSamplingBuffer(rl.group_size, max_rounds=rl.max_rollout_rounds)
    rounds = 0
    while True:
        start = time.perf_counter()
        rollout = sample_rollout(setup.model_config, params, tokenizer, next(prompts_iter),
                                 settings, jax.random.fold_in(key, rounds))
        timings["sample"] += time.perf_counter() - start
        start = time.perf_counter()
        rollout = score_rollout(rollout, settings)
        timings["reward"] += time.perf_counter() - start
        rounds += 1
        if not rl.dynamic_sampling:
            return rollout, {}, timings
        buffer.add(rollout)
        if buffer.ready(num_prompts):
            sample = buffer.pop(num_prompts)
            if sample.exhausted:
                logging.warning("dynamic sampling: only %d of %d informative groups after %d "
                                "rounds; the rest of the batch is empty", sample.num_groups,
                                num_prompts, sample.rounds)
            counts = {"rollout/rounds": sample.rounds, "rollout/groups_seen": sample.groups_seen,
                      "rollout/groups_dropped": sample.groups_dropped,
                      "rollout/groups_kept": sample.num_groups}
            return sample.batch, counts, timings


def _rollout_metrics(rollout) -> dict[str, float]:
    if rollout["rewards"].size == 0:
        return {}
    out = {"rollout/reward": float(np.mean(rollout["rewards"])),
           "rollout/accuracy": float(np.mean(rollout["correct"])),
           "rollout/response_length": float(np.mean(rollout["completion_lengths"])),
           "rollout/response_length_max": float(np.max(rollout["completion_lengths"])),
           "rollout/truncated_fraction": float(np.mean(rollout["truncated"]))}
    out.update({f"rollout/{key}": float(np.mean(value)) for key, value in rollout.items()
                if key.startswith("reward_")})
    return out


def _evaluate(setup, params, tokenizer, spec, settings, rl) -> dict[str, float]:
    """Greedy accuracy and response length on the first `rl.eval_size` eval records."""
    spec = dict(spec, shuffle=False, num_epochs=1)
    prompts_iter = make_prompt_pipeline(spec, rl, tokenizer, batch_size=1,
                                        max_prompt_len=settings.max_prompt_len, shard_index=0,
                                        shard_count=1)
    batch = {"prompt_ids": [], "answer": []}
    for example in prompts_iter:
        batch["prompt_ids"] += example["prompt_ids"]
        batch["answer"] += example["answer"]
        if len(batch["answer"]) == rl.eval_size:
            break
    rollout = score_rollout(sample_rollout(setup.model_config, params, tokenizer, batch,
                                           settings, jax.random.key(0), greedy=True),
                            settings, group_size=1)
    return {"eval/accuracy": float(np.mean(rollout["correct"])),
            "eval/response_length": float(np.mean(rollout["completion_lengths"]))}


def _write(writer, log, optimizer_step: int, values: dict[str, float]) -> None:
    writer.write_scalars(optimizer_step, values)
    log.write(optimizer_step, values)


def run_rl_stage(stage, workdir: str | Path, *, tokenizer, tokenizer_files: tuple[Path, ...] = (),
                 stage_exports: dict[str, Path] | None = None,
                 max_steps: int | None = None) -> StageResult:
    """Runs (or resumes) an RL stage in `workdir`; arguments as `train.trainer.run_stage`.

    `train.steps` and `max_steps` count rollout steps; each makes mu optimizer updates.
    """
    if jax.process_count() > 1:
        raise RuntimeError("the RL loop samples on one host (any number of its devices); "
                                  "multi-host rollouts are not supported yet")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stage = stage.copy_and_resolve_references()
    train, rl = stage.train, stage.rl
    updates = rl.num_minibatches * rl.update_epochs
    if stage.optimizer.total_steps <= 0:
        stage.optimizer.total_steps = train.steps * updates
    mesh = make_mesh(stage.mesh.to_dict())
    settings = RolloutSettings.from_config(
        rl, seq_len=train.seq_len, stop_tokens=stop_token_ids(tokenizer, rl.chat_template),
        pad_id=tokenizer.pad_id if tokenizer.pad_id is not None else 0)
    prompts_iter = make_prompt_pipeline(stage.data, rl, tokenizer, batch_size=train.batch_size,
                                        max_prompt_len=settings.max_prompt_len, seed=train.seed,
                                        shard_index=0, shard_count=1)
    eval_spec = stage.eval_data.to_dict() if rl.eval_size and train.eval_every else None
    setup = _build_training(stage, mesh, tokenizer, stage_exports or {})
    state = setup.state
    kl_coef = float(setup.objective_config.get("kl_coef", 0.0))
    ref_params = (_model_and_params(stage, mesh, tokenizer, stage_exports or {})[1]
                  if kl_coef else None)
    scorer = make_token_scorer(setup, mesh, float(setup.objective_config.temperature),
                               int(setup.objective_config.logits_chunk_size))
    estimator = get_advantage_estimator(rl.advantage)

    checkpointer = Checkpointer(workdir / "checkpoints", save_every=train.checkpoint_every * updates,
                                keep=train.keep_checkpoints, async_save=train.async_checkpointing)
    restored = checkpointer.restore_latest(setup.abstract_state)
    resumed_from = None
    if restored is not None:
        resumed_from, state, data_state = restored
        restore_iterator_state(prompts_iter, data_state["iterator"].encode())
        print(f"[{workdir.name}] resumed from rollout step {resumed_from // updates}", flush=True)

    is_main = jax.process_index() == 0
    writer = metric_writers.create_default_writer(
        str(workdir / "tensorboard"), just_logging=not is_main, asynchronous=True)
    rows = train.batch_size * rl.group_size
    log = _MetricsLog(workdir, writer, rows // rl.num_minibatches * train.seq_len)
    rows_sharding = batch_sharding(mesh)
    run_key = jax.random.wrap_key_data(jax.device_get(state.rng))
    sampler_field = "logprobs" if settings.temperature in (0.0, 1.0) else "sampling_logprobs"

    step = int(jax.device_get(state.step)) // updates
    end = train.steps if max_steps is None else min(train.steps, max_steps)
    progress = _progress_bar(step, train.steps, workdir.name) if is_main else None
    jitted = None
    skipped = 0
    first_reward = last_reward = None
    try:
        if eval_spec and step == 0:  # the starting point of the curve
            _write(writer, log, 0, {"rollout/step": 0, **_evaluate(
                setup, state.params, tokenizer, eval_spec, settings, rl)})
        while step < end:
            step_start = time.perf_counter()
            rollout, counts, timings = _collect(state, prompts_iter, settings, setup, tokenizer,
                                                rl, train.batch_size,
                                                jax.random.fold_in(run_key, step))
            advantages = np.asarray(estimator(rollout["rewards"], rl.group_size))
            batch = train_batch(rollout, advantages, seq_len=train.seq_len,
                                pad_id=settings.pad_id, rows=rows, sampler_field=sampler_field)

            update_start = time.perf_counter()
            batch = _global_batch(batch, rows_sharding)
            scored = {k: batch[k] for k in SCORED_FIELDS}
            if updates > 1:
                batch["old_logprobs"] = scorer(state.params, scored)
            if ref_params is not None:
                batch["ref_logprobs"] = scorer(ref_params, scored)
            if jitted is None:
                jitted = jit_train_step(setup.step_fn, setup.shardings, mesh, tuple(sorted(batch)))
            update_index = step * updates
            for epoch in range(rl.update_epochs):
                order = np.random.default_rng((train.seed, step, epoch)).permutation(rows)
                for part in np.split(order, rl.num_minibatches):
                    minibatch = jax.device_put({k: v[part] for k, v in batch.items()},
                                               rows_sharding)
                    state, metrics = jitted(state, minibatch)
                    log.add(update_index, metrics)
                    update_index += 1
            jax.block_until_ready(state.params)
            update_time = time.perf_counter() - update_start
            step += 1

            values = {**_rollout_metrics(rollout), **counts}
            total = time.perf_counter() - step_start
            values.update({"time/sample_s": timings["sample"], "time/reward_s": timings["reward"],
                           "time/update_s": update_time, "time/step_s": total,
                           "time/overhead_ratio": total / (timings["sample"] + update_time),
                           "rollout/step": step})
            if eval_spec and (step % train.eval_every == 0 or step == end):
                values.update(_evaluate(setup, state.params, tokenizer, eval_spec, settings, rl))
            _write(writer, log, step * updates, values)
            if "rollout/reward" in values:
                first_reward = values["rollout/reward"] if first_reward is None else first_reward
                last_reward = values["rollout/reward"]
            if progress is not None:
                progress.update(1)
                progress.set_postfix(reward=f"{values.get('rollout/reward', float('nan')):.3f}")
            if step % train.log_every == 0 or step == end:
                log.flush()
                skipped = _check_finite(state, train.on_nonfinite, skipped)
            if step % train.checkpoint_every == 0 or step == train.steps:
                skipped = _check_finite(state, train.on_nonfinite, skipped)
                checkpointer.save(step * updates, state, {"iterator": iterator_state_to_bytes(
                    prompts_iter).decode()}, force=step == train.steps)
        log.flush()
    finally:
        _close(progress, checkpointer, log)

    export_dir = None
    if step == train.steps:
        if train.export_hf:
            export_dir = export_stage(setup, state.params, workdir, tokenizer_files)
        if is_main:
            plot_learning_curve(workdir / "metrics.jsonl", workdir / CURVE_FILE)
    if first_reward is not None and is_main:
        print(f"[{workdir.name}] rollout reward {first_reward:.3f} -> {last_reward:.3f}",
              flush=True)
    return StageResult(workdir, export_dir, step, log.first_loss, log.last_loss, resumed_from)


def read_rollout_metrics(metrics_file: str | Path) -> dict[int, dict[str, float]]:
    """rollout step -> that step's rollout / eval / time metrics, from metrics.jsonl (a resumed
    run's repeated steps keep their last record)."""
    out: dict[int, dict[str, float]] = {}
    with open(metrics_file) as f:
        for line in f:
            record = json.loads(line)
            if "rollout/step" in record:
                out[int(record["rollout/step"])] = record
    return dict(sorted(out.items()))


def plot_learning_curve(metrics_file: str | Path, png: str | Path) -> Path:
    """Mean rollout reward per rollout step (raw and a 10-step moving average) and the greedy
    eval accuracy, if logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_rollout_metrics(metrics_file)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    rewards = [(s, r["rollout/reward"]) for s, r in records.items() if "rollout/reward" in r]
    if rewards:
        steps, values = (np.asarray(x) for x in zip(*rewards))
        ax.plot(steps, values, color="tab:blue", alpha=0.3, label="mean rollout reward")
        window = min(10, len(values))
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, color="tab:blue", label=f"  {window}-step average")
    evals = [(s, r["eval/accuracy"]) for s, r in records.items() if "eval/accuracy" in r]
    if evals:
        ax.plot(*zip(*evals), color="tab:green", marker="o", label="greedy eval accuracy")
    ax.set_title(f"RL learning curve ({max(records, default=0)} rollout steps)")
    ax.set_xlabel("rollout step")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)
