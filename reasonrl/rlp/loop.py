"""The RLP loop: stages whose objective registered loop="rlp" (`reasonrl.objectives.rlp`).

Each step, on a batch of `train.batch_size` plain-text documents (any corpus: a data spec with
the `pretrain` task and `pad` packing, one document per row, truncated to the room a thought
leaves: train.seq_len − len(open) − max_thought_tokens − score_tokens tokens):

  1. positions    `num_positions` positions t per document, uniform over its scoreable tokens
                  (not padding, not a special token) with t ≥ max(min_context, 1);
  2. thoughts     G = group_size thoughts per (document, position) after x_<t + open marker, at
                  `temperature`, ≤ max_thought_tokens, ending at the close marker (one shared
                  prefill per context: `reasonrl.sampling.generate`, num_samples=G);
  3. rewards      S_pred = log p_θ(x_t .. | x_<t, c) teacher-forced on the thought rows and
                  S_ema = log p̄_φ(x_t .. | x_<t) on the documents, under the EMA teacher φ kept
                  in the train state, both at temperature 1 and without gradient;
                  r = S_pred − S_ema (summed over the score_tokens window);
  4. advantages   A = G/(G−1)·(r − mean of the group), no std division;
  5. updates      num_minibatches × update_epochs optimizer steps of the clipped surrogate on
                  the thought tokens (π_old recomputed once when there are several; else
                  π_old = sg(π_θ)); after each, φ ← τφ + (1−τ)θ inside the train step;
  6. log          rlp/info_gain (mean r), rlp/info_gain_positive_fraction, rlp/s_pred,
                  rlp/s_ema, rlp/thought_length, rlp/thought_truncated_fraction, rlp/ema_drift
                  (‖θ − φ‖ / ‖φ‖), rlp/flops (cumulative FLOPs of sampling, scoring and
                  updates, `reasonrl.models.flops`) next to the update metrics (loss, clip
                  fractions, ratio extremes, entropy, KL).

With `eval_data`, every `train.eval_every` steps (and before the first): the no-think NLL per
token of its first `train.eval_batches` batches under θ (eval/nll), and the thought gain at
fixed positions with one thought each (eval/thought_gain = log p_θ(x_t | x_<t, c) − log
p_θ(x_t | x_<t)). Position and thought keys derive from (run key, step), the document order
from the checkpointed iterator, so a killed run continues exactly. Resume, logs, checks,
checkpoints and the export are the stage engine's (`reasonrl.train.engine`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from reasonrl import data as data_lib
from reasonrl.models.flops import forward_flops, train_flops
from reasonrl.objectives.registry import ObjectiveOptionError
from reasonrl.objectives.rlp import (
    RlpOptions,
    information_gain,
    rlp_advantages,
    sample_positions,
)
from reasonrl.parallel import batch_sharding, batch_split_count, make_mesh
from reasonrl.parallel.distributed import fetch_global, put_global
from reasonrl.rlp.thoughts import (
    ThoughtMarkers,
    ThoughtRows,
    gather_baseline,
    gather_scored,
    scoreable_mask,
    thought_prompts,
    thought_rows,
)
from reasonrl.sampling.generate import generate
from reasonrl.train.config import fail, objective_config
from reasonrl.train.curves import plot_step_curve, read_step_records
from reasonrl.train.engine import (
    METRICS_FILE,
    SCORED_FIELDS,
    StageResult,
    StageRun,
    StageSetup,
    build_stage,
    make_token_scorer,
)
from reasonrl.train.loops import StageLoop, register_loop

CURVE_FILE = "info_gain.png"


def thought_markers(tokenizer, options: RlpOptions, where: str = "objective") -> ThoughtMarkers:
    """The marker ids; the close marker must be one token (it stops the sampler)."""
    close = tokenizer.encode(options.thought_close)
    if len(close) != 1:
        raise ObjectiveOptionError(
            f"{where}.thought_close",
            f"{options.thought_close!r} is {len(close)} tokens of the tokenizer; it must be one "
            f"(it stops the sampler): use the tokenizer's thinking marker or add it as a "
            f"special token",
        )
    return ThoughtMarkers(tuple(tokenizer.encode(options.thought_open)), close[0])


def document_length(seq_len: int, markers_open: int, options: RlpOptions) -> int:
    """Tokens of a document row: what a thought row of seq_len leaves for the context."""
    return seq_len - markers_open - options.max_thought_tokens - options.score_tokens


def special_ids(tokenizer, markers: ThoughtMarkers) -> set[int]:
    ids = {tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id, markers.close, *markers.open}
    return {i for i in ids if i is not None}


@dataclasses.dataclass
class ThoughtBatch:
    """One round of thinking on a document batch: the rows, their rewards and what it cost."""

    rows: ThoughtRows
    s_pred: np.ndarray  # float32 [R]: Σ over the window of log p_θ(x | x_<t, c)
    s_base: np.ndarray  # float32 [R]: Σ over the window of the baseline's log p(x | x_<t)
    rewards: np.ndarray  # float32 [R]: s_pred − s_base (0 on invalid rows)
    truncated: np.ndarray  # bool [R]: the thought ran to max_thought_tokens
    flops: float  # sampling + scoring FLOPs
    timings: dict[str, float]


class Thinker:
    """Samples thoughts at positions of document rows and scores them (steps 1-3 above)."""

    def __init__(self, setup: StageSetup, tokenizer, options: RlpOptions, seq_len: int):
        self.setup, self.options, self.seq_len = setup, options, seq_len
        self.markers = thought_markers(tokenizer, options)
        self.special = special_ids(tokenizer, self.markers)
        self.pad_id = tokenizer.pad_id
        self.scorer = make_token_scorer(setup, 1.0, options.logits_chunk_size)
        self.rows_sharding = batch_sharding(setup.mesh)
        self.row_multiple = batch_split_count(setup.mesh)

    def logprobs(self, params, fields: dict) -> np.ndarray:
        """float32 [B, T] log p(targets) at temperature 1 for the rows of `fields` (padded to
        a multiple of the batch shards for the call)."""
        rows = len(fields["tokens"])
        padded = -(-rows // self.row_multiple) * self.row_multiple
        batch = {
            k: np.pad(np.asarray(fields[k]), [(0, padded - rows), (0, 0)]) for k in SCORED_FIELDS
        }
        batch = put_global(batch, self.rows_sharding)
        return np.asarray(fetch_global(self.scorer(params, batch)))[:rows]

    def __call__(
        self, params, baseline_params, documents: dict, key, *, group_size: int, temperature
    ) -> ThoughtBatch:
        options, config = self.options, self.setup.model_config
        timings = {}
        start = time.perf_counter()
        tokens, segments = documents["tokens"], documents["segment_ids"]
        scoreable = scoreable_mask(tokens, segments, self.special)
        key_positions, key_thoughts = jax.random.split(key)
        positions = np.asarray(
            sample_positions(
                scoreable, options.num_positions, max(options.min_context, 1), key_positions
            )
        )
        prompts, lengths, valid = thought_prompts(tokens, positions, self.markers, self.pad_id)
        generated = generate(
            config,
            params,
            prompts,
            prompt_lengths=lengths,
            max_new_tokens=options.max_thought_tokens,
            rng=key_thoughts,
            temperature=temperature,
            num_samples=group_size,
            stop_tokens=(self.markers.close,),
            pad_id=self.pad_id,
        )
        stopped = generated.finish_reasons == "stop"
        rows = thought_rows(
            tokens,
            segments,
            scoreable,
            positions,
            prompts,
            lengths,
            valid,
            generated.tokens,
            generated.lengths,
            stopped,
            markers=self.markers,
            group_size=group_size,
            score_tokens=options.score_tokens,
            seq_len=self.seq_len,
            pad_id=self.pad_id,
        )
        timings["sample_s"] = time.perf_counter() - start

        start = time.perf_counter()
        reasoned = gather_scored(self.logprobs(params, rows.batch()), rows)
        baseline = gather_baseline(self.logprobs(baseline_params, documents), rows)
        rewards = np.asarray(information_gain(reasoned, baseline, rows.score_mask))
        timings["score_s"] = time.perf_counter() - start
        mask = rows.score_mask
        num_rows, row_len = rows.tokens.shape
        prefill_rows, prefill_len = prompts.shape
        flops = (
            forward_flops(config, prefill_rows, prefill_len)  # the shared prefill
            # decode (KV cache): the model steps the sampler ran, each over its decode rows
            + forward_flops(config, generated.decode_rows, generated.decode_steps - 1)
            + forward_flops(config, num_rows, row_len)  # S_pred
            + forward_flops(config, *tokens.shape)  # S_ema
        )
        return ThoughtBatch(
            rows=rows,
            s_pred=np.sum(np.where(mask, reasoned, 0.0), axis=1),
            s_base=np.sum(np.where(mask, baseline, 0.0), axis=1),
            rewards=np.where(rows.valid, rewards, 0.0).astype(np.float32),
            truncated=~stopped,
            flops=flops,
            timings=timings,
        )


def thought_metrics(thoughts: ThoughtBatch) -> dict[str, float]:
    """The step's rlp/* values over the rows whose context had a position."""
    valid = thoughts.rows.valid
    if not np.any(valid):
        return {"rlp/valid_rows": 0.0}

    def mean(x):
        return float(np.mean(np.asarray(x, np.float64)[valid]))

    return {
        "rlp/info_gain": mean(thoughts.rewards),
        "rlp/info_gain_positive_fraction": mean(thoughts.rewards > 0),
        "rlp/s_pred": mean(thoughts.s_pred),
        "rlp/s_ema": mean(thoughts.s_base),
        "rlp/thought_length": mean(thoughts.rows.thought_lengths),
        "rlp/thought_truncated_fraction": mean(thoughts.truncated),
        "rlp/valid_rows": float(np.sum(valid)),
    }


@jax.jit
def relative_distance(params, ema_params) -> jax.Array:
    """‖θ − φ‖₂ / ‖φ‖₂ over all leaves (float32 scalar)."""
    diff = jax.tree.map(lambda p, e: jnp.sum((p.astype(jnp.float32) - e) ** 2), params, ema_params)
    norm = jax.tree.map(lambda e: jnp.sum(e.astype(jnp.float32) ** 2), ema_params)
    return jnp.sqrt(sum(jax.tree.leaves(diff)) / jnp.maximum(sum(jax.tree.leaves(norm)), 1e-30))


class ThoughtEvaluator:
    """params -> {"eval/nll", "eval/thought_gain"} on the first `train.eval_batches` batches of
    the eval documents (fixed positions and thought keys, one thought per position, θ as its
    own no-think baseline)."""

    def __init__(self, thinker: Thinker, spec: dict, tokenizer, train, doc_len: int):
        self.thinker = thinker
        iterator = data_lib.make_pipeline(
            dict(spec, shuffle=False, num_epochs=1),
            tokenizer,
            batch_size=train.batch_size,
            seq_len=doc_len,
            shard_index=0,
            shard_count=1,
            where="eval_data",
        )
        self.batches = [batch for _, batch in zip(range(train.eval_batches), iterator)]

    def __call__(self, params) -> dict[str, float]:
        nll_sum, nll_count, gains = 0.0, 0, []
        for index, documents in enumerate(self.batches):
            logprobs = self.thinker.logprobs(params, documents)
            scored = np.asarray(documents["loss_mask"], bool)
            nll_sum -= float(np.sum(np.where(scored, logprobs, 0.0)))
            nll_count += int(np.sum(scored))
            thoughts = self.thinker(
                params,
                params,
                documents,
                jax.random.key(index),
                group_size=1,
                temperature=self.thinker.options.temperature,
            )
            gains.append(thoughts.rewards[thoughts.rows.valid])
        gains = np.concatenate(gains) if gains else np.zeros(0)
        return {
            "eval/nll": nll_sum / max(nll_count, 1),
            "eval/thought_gain": float(np.mean(gains)) if gains.size else float("nan"),
        }


def _flops_before(workdir: Path, step: int) -> float:
    """rlp/flops logged at loop step `step` by an earlier run (0 when starting over). Read
    after the StageRun opened its log, which dropped the records of the steps run again."""
    path = Path(workdir) / METRICS_FILE
    if step == 0 or not path.exists():
        return 0.0
    return read_rlp_metrics(path).get(step, {}).get("rlp/flops", 0.0)


def run_rlp_stage(
    stage,
    workdir: str | Path,
    *,
    tokenizer,
    tokenizer_files: tuple[Path, ...] = (),
    stage_exports: dict[str, Path] | None = None,
    max_steps: int | None = None,
) -> StageResult:
    """Runs (or resumes) an RLP stage in `workdir`; arguments as the supervised loop's.
    `train.steps` counts loop steps; each makes num_minibatches × update_epochs updates.

    On several processes (hosts) every process reads the same documents and holds the same
    thoughts, rewards and train batch: sampling and scoring are programs over the global mesh
    (each host's devices compute their rows; inputs go up whole with `put_global`, results
    come back to every process with `fetch_global`), so the update is one process's."""
    train = stage.train
    options = RlpOptions.from_config(objective_config(stage))
    updates = options.num_minibatches * options.update_epochs
    mesh = make_mesh(stage.mesh.to_dict())
    markers = thought_markers(tokenizer, options)
    doc_len = document_length(train.seq_len, len(markers.open), options)
    documents_iter = data_lib.make_pipeline(
        stage.data,
        tokenizer,
        batch_size=train.batch_size,
        seq_len=doc_len,
        seed=train.seed,
        shard_index=0,
        shard_count=1,
        where=f"stages.{Path(workdir).name}.data",
    )
    setup = build_stage(
        stage, mesh, tokenizer, stage_exports or {}, total_updates=train.steps * updates
    )
    thinker = Thinker(setup, tokenizer, options, train.seq_len)
    evaluate = None
    if stage.eval_data and train.eval_every:
        evaluate = ThoughtEvaluator(thinker, stage.eval_data.to_dict(), tokenizer, train, doc_len)
    old_scorer = None
    if updates > 1:
        old_scorer = make_token_scorer(setup, options.temperature, options.logits_chunk_size)
    rows = train.batch_size * options.num_positions * options.group_size
    rows_sharding = batch_sharding(mesh)
    # every epoch trains on all rows, split into minibatches
    update_flops = options.update_epochs * train_flops(setup.model_config, rows, train.seq_len)

    with StageRun(
        stage,
        workdir,
        setup,
        iterator=documents_iter,
        tokens_per_update=rows // options.num_minibatches * train.seq_len,
        updates_per_step=updates,
        max_steps=max_steps,
        evaluate=evaluate,
        evaluate_at_start=True,
        step_key="rlp/step",
        tokenizer_files=tokenizer_files,
    ) as run:
        run_key = jax.random.wrap_key_data(jax.device_get(run.state.rng))
        flops = _flops_before(run.workdir, run.step)
        gains = []
        while run.step < run.end:
            step_start = time.perf_counter()
            thoughts = thinker(
                run.state.params,
                run.state.extra["ema_params"],
                next(documents_iter),
                jax.random.fold_in(run_key, run.step),
                group_size=options.group_size,
                temperature=options.temperature,
            )
            batch = dict(
                thoughts.rows.batch(),
                advantages=np.asarray(rlp_advantages(thoughts.rewards, options.group_size)),
            )
            update_start = time.perf_counter()
            batch = setup.complete_batch(put_global(batch, rows_sharding))
            step_flops = thoughts.flops + update_flops
            if old_scorer is not None:
                batch["old_logprobs"] = old_scorer(
                    run.state.params, {k: batch[k] for k in SCORED_FIELDS}
                )
                step_flops += forward_flops(setup.model_config, rows, train.seq_len)
            run.minibatch_updates(
                batch, num_minibatches=options.num_minibatches, update_epochs=options.update_epochs
            )
            drift = float(relative_distance(run.state.params, run.state.extra["ema_params"]))
            flops += step_flops
            values = thought_metrics(thoughts)
            if "rlp/info_gain" in values:
                gains.append(values["rlp/info_gain"])
            values.update(
                {
                    "rlp/ema_drift": drift,
                    "rlp/flops": flops,
                    "time/sample_s": thoughts.timings["sample_s"],
                    "time/score_s": thoughts.timings["score_s"],
                    "time/update_s": time.perf_counter() - update_start,
                    "time/step_s": time.perf_counter() - step_start,
                }
            )
            run.end_step(
                values,
                postfix={"info_gain": f"{values.get('rlp/info_gain', float('nan')):.3f}"},
            )

    if run.step == train.steps and run.is_main:
        plot_info_gain(run.workdir / METRICS_FILE, run.workdir / CURVE_FILE)
    if gains and run.is_main:  # the loss is 0 at a ratio of 1: the gain says how it went
        print(f"[{run.workdir.name}] rlp/info_gain {gains[0]:.3f} -> {gains[-1]:.3f}", flush=True)
    return run.result


def read_rlp_metrics(metrics_file: str | Path) -> dict[int, dict[str, float]]:
    """loop step -> that step's rlp / eval / time values, from metrics.jsonl."""
    return read_step_records(metrics_file, "rlp/step")


def plot_info_gain(metrics_file: str | Path, png: str | Path) -> Path:
    """The information gain per step (raw and a 10-step moving average) and, if logged, the
    eval thought gain."""
    return plot_step_curve(
        read_rlp_metrics(metrics_file),
        png,
        series=("rlp/info_gain", "rlp/info_gain"),
        evals=("eval/thought_gain", "eval/thought_gain"),
        title="RLP information gain",
        xlabel="step",
        ylabel="nats",
        zero_line=True,
    )


def validate_rlp_stage(stage, prefix: str, config_file: str | None) -> int:
    """Checks what the objective's own validation cannot: the row budget and the minibatches;
    returns the rows of one optimizer update."""
    try:
        options = RlpOptions.from_config(objective_config(stage))
    except ObjectiveOptionError as error:
        fail(f"{prefix}.objective.{error.option}", error.message, config_file)
    train = stage.train
    room = document_length(train.seq_len, 0, options)
    if room < max(options.min_context, 1) + 1:
        fail(
            f"{prefix}.train.seq_len",
            f"{train.seq_len} leaves {room} tokens of document context after "
            f"objective.max_thought_tokens={options.max_thought_tokens} and "
            f"objective.score_tokens={options.score_tokens}; need more than "
            f"min_context={options.min_context} (before the open marker's tokens)",
            config_file,
        )
    rows = train.batch_size * options.num_positions * options.group_size
    if rows % options.num_minibatches:
        fail(
            f"{prefix}.objective.num_minibatches",
            f"{rows} thought rows (batch_size * num_positions * group_size) do not split into "
            f"{options.num_minibatches} minibatches",
            config_file,
        )
    if not stage.data:
        fail(f"{prefix}.data", "RLP needs documents (a pretrain-task data spec)", config_file)
    return rows // options.num_minibatches


def check_rlp_data(stage, spec, tokenizer, where: str, prefix: str) -> None:
    """Preflight: the thought markers tokenize as needed and the spec yields document rows."""
    options = RlpOptions.from_config(objective_config(stage))
    markers = thought_markers(tokenizer, options, where=f"{prefix}.objective")
    doc_len = document_length(stage.train.seq_len, len(markers.open), options)
    batch = next(
        data_lib.make_pipeline(
            dict(spec.to_dict() if hasattr(spec, "to_dict") else spec, shuffle=False),
            tokenizer,
            batch_size=1,
            seq_len=doc_len,
            shard_index=0,
            shard_count=1,
            where=where,
        )
    )
    if "tokens" not in batch or "segment_ids" not in batch:
        raise ValueError(f"{where}: RLP reads document rows (task: pretrain, packing: pad)")


RLP_LOOP = register_loop(
    StageLoop(
        name="rlp",
        run=run_rlp_stage,
        validate=validate_rlp_stage,
        check_data=check_rlp_data,
    )
)
