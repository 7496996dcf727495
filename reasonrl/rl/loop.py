"""The RL loop (GRPO / Dr. GRPO / DAPO / GSPO): stages whose objective registered loop="rl".

Each rollout step, in order:

  1. prompts      next batch of `train.batch_size` prompts (grain, checkpointed state);
  2. sample       G = rl.group_size samples per prompt with the current params, one shared
                  prefill per prompt (reasonrl.sampling.generate, num_samples=G);
  3. rewards      the grader's correctness (+ format, length and overlong terms);
                  with rl.dynamic_sampling, groups whose accuracy (or, with
                  rl.dynamic_sampling_filter="reward", whose shaped reward) is the same for all
                  G samples are dropped and more prompts sampled (at most
                  rl.max_rollout_rounds rounds); a surplus beyond the batch is dropped, as in
                  DAPO's reference implementation;
  4. advantages   by name (rl.advantage: grpo | drgrpo | rloo) within each group;
  5. updates      mu = rl.num_minibatches * rl.update_epochs optimizer steps of the objective
                  on shuffled minibatches of the rollout, against the rollout policy's
                  log-probs recomputed once before the first update (skipped when mu = 1: then
                  pi_old = sg(pi_theta) exactly) and the objective's reference fields (the
                  frozen initial params' log-probs when objective.kl_coef > 0: the engine's
                  reference mechanism, as for DPO);
  6. log          rollout metrics (reward and each term, accuracy, response length, truncation,
                  per-group diversity: distinct final answers / G and mean pairwise ROUGE-1,
                  dynamic-sampling counts, time of each phase) next to the update metrics
                  (loss, clip fractions, KL, entropy, ratio extremes, sampler-vs-trainer
                  log-prob gap);
  7. checkpoint   every train.checkpoint_every rollout steps (train state + prompt iterator).

The sampling key of step s and round r is fold_in(fold_in(run key, s), r) and minibatches are
shuffled by (train.seed, s, epoch), so a run killed and restarted continues exactly as it
would have. At the end the final params are exported (HF safetensors) and the reward curve is
drawn to `learning_curve.png`. Resume, logs, checks, checkpoints and the export are the stage
engine's (`reasonrl.train.engine`); this module says what one rollout step does.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
from absl import logging

from reasonrl.data.prompt_pipeline import check_prompt_spec, make_prompt_pipeline
from reasonrl.data.prompt_templates import PROMPT_TEMPLATES, stop_token_ids
from reasonrl.data.tokenizer.chat_templates import CHAT_TEMPLATES
from reasonrl.diversity.groups import group_diversity
from reasonrl.diversity.hivemind import mean_pairwise_similarity
from reasonrl.models import EncoderNotFoundError, SentenceEncoder, default_encoder_directory
from reasonrl.parallel import batch_sharding, make_mesh
from reasonrl.parallel.distributed import put_global
from reasonrl.rewards import REWARDS, extract_answer, normalize_answer
from reasonrl.rewards.shaping import LENGTH_PENALTIES
from reasonrl.rl.advantages import ADVANTAGE_ESTIMATORS, get_advantage_estimator
from reasonrl.rl.dynamic_sampling import DynamicSamplingBuffer
from reasonrl.rl.rollout import RolloutSettings, sample_rollout, score_rollout, train_batch
from reasonrl.train.config import fail
from reasonrl.train.curves import plot_step_curve, read_step_records
from reasonrl.train.engine import (
    SCORED_FIELDS,
    StageResult,
    StageRun,
    StageSetup,
    build_stage,
    make_token_scorer,
)
from reasonrl.train.loops import StageLoop, loop_options, register_loop

CURVE_FILE = "learning_curve.png"
# rl.dynamic_sampling_filter -> the rollout field whose equal values make a group uninformative.
DYNAMIC_SAMPLING_FILTERS = {"accuracy": "correct", "reward": "rewards"}


def rl_options() -> ml_collections.ConfigDict:
    """The rl loop's section of a stage (`stage.rl`). The stage reads its prompts (with gold
    answers) from `data` and trains its objective on them; `train.batch_size` is prompts per
    rollout step and `train.steps` counts rollout steps."""
    return ml_collections.ConfigDict(
        dict(
            prompt_field="question",
            answer_field="answer",
            prompt_template="plain",  # reasonrl.data.prompt_templates.PROMPT_TEMPLATES
            chat_template="chatml",
            group_size=8,  # G samples per prompt (they share one prefill)
            max_new_tokens=64,  # completion budget; prompts get train.seq_len - max_new_tokens
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            # rows the decode engine samples at once (reasonrl.sampling.generate); 0: its
            # default (16 on CPU, 256 on GPU/TPU). Changes speed and memory, not the samples.
            decode_slots=0,
            reward="math_correctness",  # reasonrl.rewards.REWARDS
            wrong_reward=0.0,  # correctness reward of a wrong answer (DAPO: -1.0)
            format_weight=0.0,  # > 0 adds w * the `format` reward
            length_penalty="",  # reasonrl.rewards.shaping.LENGTH_PENALTIES name, "" for none
            length_penalty_weight=1.0,
            overlong_cache_length=0,  # > 0: DAPO soft overlong punishment, L_max = max_new_tokens
            advantage="grpo",  # reasonrl.rl.ADVANTAGE_ESTIMATORS
            dynamic_sampling=False,  # DAPO: keep only groups whose samples differ, refill
            dynamic_sampling_filter="accuracy",  # what must differ: accuracy (DAPO) | reward
            max_rollout_rounds=4,  # dynamic sampling: rollout rounds per step at most
            num_minibatches=1,  # optimizer updates per epoch over one rollout batch
            update_epochs=1,  # passes over the rollout batch (mu = num_minibatches * epochs)
            eval_size=0,  # > 0: greedy accuracy on the first eval_size records of eval_data
            # a sentence-encoder directory, or "default" (all-MiniLM-L6-v2 from the diversity
            # extra): also log each group's mean pairwise embedding similarity; "": off
            diversity_encoder="",
        )
    )


def validate_rl_stage(stage, prefix: str, config_file: str | None) -> int:
    """Checks `stage.rl` (complete with defaults); returns the rows of one optimizer update."""
    rl, train = stage.rl, stage.train
    where = f"{prefix}.rl"
    for key, known in (
        ("prompt_template", PROMPT_TEMPLATES),
        ("chat_template", CHAT_TEMPLATES),
        ("reward", REWARDS),
        ("advantage", ADVANTAGE_ESTIMATORS),
        ("dynamic_sampling_filter", DYNAMIC_SAMPLING_FILTERS),
    ):
        if rl[key] not in known:
            fail(f"{where}.{key}", f"{rl[key]!r}; choose from {sorted(known)}", config_file)
    if rl.length_penalty and rl.length_penalty not in LENGTH_PENALTIES:
        fail(
            f"{where}.length_penalty",
            f"{rl.length_penalty!r}; choose from {sorted(LENGTH_PENALTIES)} or ''",
            config_file,
        )
    for key in (
        "group_size",
        "max_new_tokens",
        "num_minibatches",
        "update_epochs",
        "max_rollout_rounds",
    ):
        if rl[key] < 1:
            fail(f"{where}.{key}", f"must be >= 1, got {rl[key]}", config_file)
    if rl.eval_size < 0 or rl.overlong_cache_length < 0:
        fail(where, "eval_size and overlong_cache_length must be >= 0", config_file)
    if rl.decode_slots < 0:
        fail(
            f"{where}.decode_slots",
            f"must be >= 0 (0: the engine's default), got {rl.decode_slots}",
            config_file,
        )
    if rl.overlong_cache_length >= rl.max_new_tokens:
        fail(
            f"{where}.overlong_cache_length",
            f"{rl.overlong_cache_length} must be below max_new_tokens={rl.max_new_tokens}",
            config_file,
        )
    if rl.temperature < 0 or not 0 < rl.top_p <= 1 or rl.top_k < 0:
        fail(where, "need temperature >= 0, 0 < top_p <= 1, top_k >= 0", config_file)
    if train.seq_len <= rl.max_new_tokens:
        fail(
            f"{prefix}.train.seq_len",
            f"{train.seq_len} leaves no room for a prompt before "
            f"rl.max_new_tokens={rl.max_new_tokens}",
            config_file,
        )
    if rl.diversity_encoder:
        try:
            if rl.diversity_encoder == "default":
                default_encoder_directory()
            elif not os.path.isfile(os.path.join(rl.diversity_encoder, "config.json")):
                raise EncoderNotFoundError(
                    f"{rl.diversity_encoder} is not a sentence-encoder directory (no config.json)"
                )
        except EncoderNotFoundError as error:
            fail(f"{where}.diversity_encoder", str(error), config_file)
    if rl.eval_size and not stage.eval_data:
        fail(f"{where}.eval_size", "needs eval_data (prompts with answers)", config_file)
    if "temperature" in stage.objective:
        fail(
            f"{prefix}.objective.temperature",
            "is taken from rl.temperature in the rl loop",
            config_file,
        )
    rows = train.batch_size * rl.group_size
    if rows % rl.num_minibatches:
        fail(
            f"{where}.num_minibatches",
            f"{rows} rollout rows (batch_size * group_size) do not "
            f"split into {rl.num_minibatches} minibatches",
            config_file,
        )
    return rows // rl.num_minibatches


def _objective_options(rl) -> dict:
    """The objective scores log-probs at the sampling temperature (1 for greedy)."""
    return {"temperature": float(rl.temperature) or 1.0}


def _collect(params, prompts_iter, settings, setup, tokenizer, rl, num_prompts: int, key):
    """Rollout rounds until `num_prompts` groups are ready; (rollout, counts, timings)."""
    timings = {"sample": 0.0, "reward": 0.0}
    buffer = DynamicSamplingBuffer(
        rl.group_size,
        max_rounds=rl.max_rollout_rounds,
        reward_key=DYNAMIC_SAMPLING_FILTERS[rl.dynamic_sampling_filter],
    )
    rounds = 0
    while True:
        start = time.perf_counter()
        rollout = sample_rollout(
            setup.model_config,
            params,
            tokenizer,
            next(prompts_iter),
            settings,
            jax.random.fold_in(key, rounds),
        )
        timings["sample"] += time.perf_counter() - start
        start = time.perf_counter()
        rollout = score_rollout(rollout, settings)
        timings["reward"] += time.perf_counter() - start
        rounds += 1
        if not rl.dynamic_sampling:
            return rollout, {}, timings
        buffer.add(rollout)
        if buffer.ready(num_prompts):
            sample = buffer.pop(num_prompts)  # the surplus is dropped with the buffer
            if sample.exhausted:
                logging.warning(
                    "dynamic sampling: only %d of %d informative groups after %d "
                    "rounds; the rest of the batch is empty",
                    sample.num_groups,
                    num_prompts,
                    sample.rounds,
                )
            counts = {
                "rollout/rounds": sample.rounds,
                "rollout/groups_seen": sample.groups_seen,
                "rollout/groups_dropped": sample.groups_dropped,
                "rollout/groups_kept": sample.num_groups,
                "rollout/groups_surplus": buffer.num_groups,
            }
            return sample.batch, counts, timings


def _group_diversity_metrics(rollout, group_size: int, encoder=None) -> dict[str, float]:
    """rollout/distinct_answer_fraction and rollout/pairwise_rouge1, means over the groups
    (`reasonrl.diversity.groups`), and with a sentence `encoder` the mean pairwise cosine of
    each group's embeddings (rollout/pairwise_embedding_similarity): collapse shows here
    before it shows in accuracy."""
    texts = [str(text) for text in rollout["completion_text"]]
    answers = []
    for text in texts:
        answer = extract_answer(text)
        answers.append(None if answer is None else normalize_answer(answer))
    signals = group_diversity(texts, answers, group_size)
    if encoder is not None and group_size > 1:
        embeddings = encoder.encode(texts).reshape(-1, group_size, encoder.dim)
        signals["pairwise_embedding_similarity"] = float(
            np.mean([mean_pairwise_similarity(group) for group in embeddings])
        )
    return {f"rollout/{name}": value for name, value in signals.items()}


def _rollout_metrics(rollout, group_size: int | None = None, encoder=None) -> dict[str, float]:
    """The step's rollout metrics; with `group_size`, also the per-group diversity signals
    (with an `encoder`, the embedding similarity too)."""
    if rollout["rewards"].size == 0:
        return {}
    out = {
        "rollout/reward": float(np.mean(rollout["rewards"])),
        "rollout/accuracy": float(np.mean(rollout["correct"])),
        "rollout/response_length": float(np.mean(rollout["completion_lengths"])),
        "rollout/response_length_max": float(np.max(rollout["completion_lengths"])),
        "rollout/truncated_fraction": float(np.mean(rollout["truncated"])),
    }
    out.update(
        {
            f"rollout/{key}": float(np.mean(value))
            for key, value in rollout.items()
            if key.startswith("reward_")
        }
    )
    if group_size:
        out.update(_group_diversity_metrics(rollout, group_size, encoder))
    return out


class GreedyEvaluator:
    """params -> greedy accuracy and response length on the first `rl.eval_size` records of
    the eval data (as "eval/accuracy", "eval/response_length")."""

    def __init__(self, setup: StageSetup, tokenizer, spec: dict, settings: RolloutSettings, rl):
        self.setup, self.tokenizer, self.settings = setup, tokenizer, settings
        prompts_iter = make_prompt_pipeline(
            dict(spec, shuffle=False, num_epochs=1),
            rl,
            tokenizer,
            batch_size=1,
            max_prompt_len=settings.max_prompt_len,
            shard_index=0,
            shard_count=1,
        )
        self.batch = {"prompt_ids": [], "answer": []}
        for example in prompts_iter:
            self.batch["prompt_ids"] += example["prompt_ids"]
            self.batch["answer"] += example["answer"]
            if len(self.batch["answer"]) == rl.eval_size:
                break

    def __call__(self, params) -> dict[str, float]:
        rollout = score_rollout(
            sample_rollout(
                self.setup.model_config,
                params,
                self.tokenizer,
                self.batch,
                self.settings,
                jax.random.key(0),
                greedy=True,
            ),
            self.settings,
            group_size=1,
        )
        return {
            "eval/accuracy": float(np.mean(rollout["correct"])),
            "eval/response_length": float(np.mean(rollout["completion_lengths"])),
        }


def run_rl_stage(
    stage,
    workdir: str | Path,
    *,
    tokenizer,
    tokenizer_files: tuple[Path, ...] = (),
    stage_exports: dict[str, Path] | None = None,
    max_steps: int | None = None,
) -> StageResult:
    """Runs (or resumes) an RL stage in `workdir`; arguments as the supervised loop's.

    `train.steps` and `max_steps` count rollout steps; each makes mu optimizer updates.

    On several processes (hosts) each reads the same prompts, and together they run one job:
    the sampler is one program over the global mesh (each host's devices sample their rows),
    each process grades its share of the rows (`rollout.grade_rows`) and the grades are
    gathered, so every process holds the same rollout, advantages and train batch (put on the
    mesh whole with `put_global`) and the update is the one a single process would make.
    """
    train, rl = stage.train, loop_options(stage, RL_LOOP)
    updates = rl.num_minibatches * rl.update_epochs
    mesh = make_mesh(stage.mesh.to_dict())
    settings = RolloutSettings.from_config(
        rl,
        seq_len=train.seq_len,
        stop_tokens=stop_token_ids(tokenizer, rl.chat_template),
        pad_id=tokenizer.pad_id if tokenizer.pad_id is not None else 0,
    )
    prompts_iter = make_prompt_pipeline(
        stage.data,
        rl,
        tokenizer,
        batch_size=train.batch_size,
        max_prompt_len=settings.max_prompt_len,
        seed=train.seed,
        shard_index=0,
        shard_count=1,
        where=f"stages.{Path(workdir).name}.data",  # a bad record names the stage's fields
        rl_where=f"stages.{Path(workdir).name}.rl",
    )
    setup = build_stage(
        stage, mesh, tokenizer, stage_exports or {}, total_updates=train.steps * updates
    )
    evaluate = None
    if rl.eval_size and train.eval_every:
        evaluate = GreedyEvaluator(setup, tokenizer, stage.eval_data.to_dict(), settings, rl)
    scorer = make_token_scorer(
        setup,
        float(setup.objective_config.temperature),
        int(setup.objective_config.logits_chunk_size),
    )
    estimator = get_advantage_estimator(rl.advantage)
    rows = train.batch_size * rl.group_size
    rows_sharding = batch_sharding(mesh)
    sampler_field = "logprobs" if settings.temperature in (0.0, 1.0) else "sampling_logprobs"
    encoder = None
    if rl.diversity_encoder:
        directory = None if rl.diversity_encoder == "default" else rl.diversity_encoder
        encoder = SentenceEncoder.from_directory(directory)
    rewards = []

    with StageRun(
        stage,
        workdir,
        setup,
        iterator=prompts_iter,
        tokens_per_update=rows // rl.num_minibatches * train.seq_len,
        updates_per_step=updates,
        max_steps=max_steps,
        evaluate=evaluate,
        evaluate_at_start=True,
        step_key="rollout/step",
        tokenizer_files=tokenizer_files,
    ) as run:
        run_key = jax.random.wrap_key_data(jax.device_get(run.state.rng))
        while run.step < run.end:
            step_start = time.perf_counter()
            rollout, counts, timings = _collect(
                run.state.params,
                prompts_iter,
                settings,
                setup,
                tokenizer,
                rl,
                train.batch_size,
                jax.random.fold_in(run_key, run.step),
            )
            advantages = np.asarray(estimator(rollout["rewards"], rl.group_size))
            batch = train_batch(
                rollout,
                advantages,
                seq_len=train.seq_len,
                pad_id=settings.pad_id,
                rows=rows,
                sampler_field=sampler_field,
            )

            update_start = time.perf_counter()
            batch = setup.complete_batch(put_global(batch, rows_sharding))
            if updates > 1:
                batch["old_logprobs"] = scorer(
                    run.state.params, {k: batch[k] for k in SCORED_FIELDS}
                )
            run.minibatch_updates(
                batch, num_minibatches=rl.num_minibatches, update_epochs=rl.update_epochs
            )
            jax.block_until_ready(run.state.params)
            update_time = time.perf_counter() - update_start

            values = {**_rollout_metrics(rollout, rl.group_size, encoder), **counts}
            total = time.perf_counter() - step_start
            values.update(
                {
                    "time/sample_s": timings["sample"],
                    "time/reward_s": timings["reward"],
                    "time/update_s": update_time,
                    "time/step_s": total,
                    "time/overhead_ratio": total / (timings["sample"] + update_time),
                }
            )
            if "rollout/reward" in values:
                rewards.append(values["rollout/reward"])
            run.end_step(
                values, postfix={"reward": f"{values.get('rollout/reward', float('nan')):.3f}"}
            )

    if run.step == train.steps and run.is_main:
        plot_learning_curve(run.workdir / "metrics.jsonl", run.workdir / CURVE_FILE)
    if rewards and run.is_main:
        print(
            f"[{run.workdir.name}] rollout reward {rewards[0]:.3f} -> {rewards[-1]:.3f}", flush=True
        )
    return run.result


def read_rollout_metrics(metrics_file: str | Path) -> dict[int, dict[str, float]]:
    """rollout step -> that step's rollout / eval / time metrics, from metrics.jsonl."""
    return read_step_records(metrics_file, "rollout/step")


def plot_learning_curve(metrics_file: str | Path, png: str | Path) -> Path:
    """Mean rollout reward per rollout step (raw and a 10-step moving average) and the greedy
    eval accuracy, if logged."""
    return plot_step_curve(
        read_rollout_metrics(metrics_file),
        png,
        series=("rollout/reward", "mean rollout reward"),
        evals=("eval/accuracy", "greedy eval accuracy"),
        title="RL learning curve",
        xlabel="rollout step",
    )


def check_rl_data(stage, spec, tokenizer, where: str, prefix: str) -> None:
    """Preflight: the prompt spec builds and its first record has a problem and a gold answer
    (`rl.prompt_field` / `rl.answer_field`)."""
    rl = loop_options(stage, RL_LOOP)
    check_prompt_spec(spec, rl, tokenizer, where=where, rl_where=f"{prefix}.rl")


RL_LOOP = register_loop(
    StageLoop(
        name="rl",
        run=run_rl_stage,
        options=rl_options,
        validate=validate_rl_stage,
        objective_options=_objective_options,
        check_data=check_rl_data,
    )
)
