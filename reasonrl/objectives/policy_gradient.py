"""Clipped policy-gradient objective for GRPO / Dr. GRPO / DAPO (`policy_gradient`).

Per response token t of sequence i (m_it = loss_mask), with ρ = exp(log π_θ − log π_old):

    pg_it  = max(−A·ρ, −A·clip(ρ, 1 − ε_low, 1 + ε_high))            PPO / GRPO / DAPO clip-higher
    pg_it  = min(pg_it, −A·c)            where A < 0, if dual_clip_c = c > 1 (dual clip, verl)
    l_it   = pg_it + β · KL_k(π_θ ‖ π_ref)_it                           KL in the loss (GRPO), β ≥ 0

The loss is l aggregated by `loss_aggregation` (see LOSS_AGGREGATIONS): every mode returns a
(loss_sum, denominator) pair whose ratio, with both summed over micro-batches, is the mode's
exact full-batch loss. A, log π_old and log π_ref are constants (stop_gradient); gradient flows
through log π_θ only. Positions with m = 0 (prompt, padding, a zero-length response) are
neutralised before any arithmetic, so they contribute nothing and whatever they hold (junk,
±inf, NaN in old / ref / sampler log-probs or advantages) cannot produce inf or NaN.

Batch (one sequence per row; packing several sequences into a row is not supported because the
sequence-level aggregations normalise per row):
  tokens, targets, positions, segment_ids   int32 [B, T]
  loss_mask        float32 [B, T]   1 on the response tokens being scored
  advantages       float32 [B] (outcome, broadcast over tokens) or [B, T] (per token)
  old_logprobs     float32 [B, T]   log π_old(target) of the rollout policy as recomputed by the
                                    trainer; optional: absent means on-policy, π_old = sg(π_θ)
  ref_logprobs     float32 [B, T]   log π_ref(target); required only when kl_coef > 0 (with
                                    kl_coef = 0 it only feeds the `kl` metric when present)
  sampler_logprobs float32 [B, T]   optional, the sampler's own log-probs, for the
                                    `sampler_logprob_abs_diff` health metric only
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from reasonrl.objectives.logprobs import token_statistics
from reasonrl.objectives.metrics import Max, Mean, Min
from reasonrl.objectives.registry import ModelContext, register_objective

KlEstimator = Callable[[jax.Array, jax.Array], jax.Array]
KL_ESTIMATORS: dict[str, KlEstimator] = {}


def _kl_estimator(name: str):
    def decorator(fn: KlEstimator) -> KlEstimator:
        KL_ESTIMATORS[name] = fn
        return fn
    return decorator


@_kl_estimator("k1")
def kl_k1(logprobs: jax.Array, ref_logprobs: jax.Array) -> jax.Array:
    """log π_θ − log π_ref (unbiased, high variance, can be negative)."""
    return logprobs - ref_logprobs


@_kl_estimator("k3")
def kl_k3(logprobs: jax.Array, ref_logprobs: jax.Array) -> jax.Array:
    """π_ref/π_θ − log(π_ref/π_θ) − 1 (Schulman's k3, GRPO's per-token KL; ≥ 0)."""
    log_ratio = ref_logprobs - logprobs
    return jnp.exp(log_ratio) - log_ratio - 1.0


@_kl_estimator("low_var_kl")
def kl_low_var(logprobs: jax.Array, ref_logprobs: jax.Array) -> jax.Array:
    """k3 as verl computes it: log-ratio clamped to ±20, the estimate to [−10, 10]."""
    log_ratio = jnp.clip(ref_logprobs - logprobs, -20.0, 20.0)
    return jnp.clip(jnp.exp(log_ratio) - log_ratio - 1.0, -10.0, 10.0)


Aggregation = Callable[[jax.Array, jax.Array, float], tuple[jax.Array, jax.Array]]
LOSS_AGGREGATIONS: dict[str, Aggregation] = {}


def _aggregation(name: str):
    def decorator(fn: Aggregation) -> Aggregation:
        LOSS_AGGREGATIONS[name] = fn
        return fn
    return decorator


def _num_sequences(mask: jax.Array) -> jax.Array:
    """Rows with at least one response token; empty rows (padding) are not sequences."""
    return jnp.sum((jnp.sum(mask, axis=1) > 0).astype(jnp.float32))


@_aggregation("token_mean")
def token_mean(per_token_loss, mask, norm_length):
    """DAPO: Σ_it m·l / Σ_it m (every token of the global batch weighs the same)."""
    del norm_length
    return jnp.sum(per_token_loss * mask), jnp.sum(mask)


@_aggregation("seq_mean_token_mean")
def seq_mean_token_mean(per_token_loss, mask, norm_length):
    """GRPO: (1/N) Σ_i (1/|o_i|) Σ_t m·l over the N non-empty sequences."""
    del norm_length
    per_sequence = jnp.sum(per_token_loss * mask, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1)
    return jnp.sum(per_sequence), _num_sequences(mask)


@_aggregation("seq_mean_token_sum_norm")
def seq_mean_token_sum_norm(per_token_loss, mask, norm_length):
    """Dr. GRPO: (1/N) Σ_i Σ_t m·l / L with L a constant (`loss_norm_length`)."""
    return jnp.sum(per_token_loss * mask) / norm_length, _num_sequences(mask)


@dataclasses.dataclass(frozen=True)
class PolicyGradientOptions:
    """The objective's options (see `register_objective` below for defaults).

    clip_eps_low / clip_eps_high: ε_low, ε_high of the ratio clip (DAPO: 0.2 / 0.28).
    dual_clip_c: c > 1 bounds the loss of negative-advantage tokens by −A·c; 0 disables.
    kl_coef: β; 0 skips the KL term entirely (ref_logprobs not needed).
    kl_estimator: a KL_ESTIMATORS name: k1 | k3 | low_var_kl.
    loss_aggregation: a LOSS_AGGREGATIONS name: token_mean | seq_mean_token_mean |
        seq_mean_token_sum_norm.
    loss_norm_length: Dr. GRPO's constant L (set it to the generation budget, MAX_TOKENS);
        0 uses the batch's padded length T.
    """

    clip_eps_low: float = 0.2
    clip_eps_high: float = 0.2
    dual_clip_c: float = 0.0
    kl_coef: float = 0.0
    kl_estimator: str = "k3"
    loss_aggregation: str = "token_mean"
    loss_norm_length: int = 0

    def __post_init__(self):
        if not (0.0 <= self.clip_eps_low < 1.0 and self.clip_eps_high >= 0.0):
            raise ValueError(f"need 0 <= clip_eps_low < 1 and clip_eps_high >= 0, got "
                             f"{self.clip_eps_low}, {self.clip_eps_high}")
        if self.dual_clip_c != 0.0 and self.dual_clip_c <= 1.0:
            raise ValueError(f"dual_clip_c={self.dual_clip_c} must be > 1 (or 0 to disable)")
        if self.kl_coef < 0.0:
            raise ValueError(f"kl_coef={self.kl_coef} must be >= 0")
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ValueError(f"kl_estimator={self.kl_estimator!r}; choose {sorted(KL_ESTIMATORS)}")
        if self.loss_aggregation not in LOSS_AGGREGATIONS:
            raise ValueError(f"loss_aggregation={self.loss_aggregation!r}; "
                             f"choose {sorted(LOSS_AGGREGATIONS)}")
        if self.loss_norm_length < 0:
            raise ValueError(f"loss_norm_length={self.loss_norm_length} must be >= 0")

    @classmethod
    def from_config(cls, config) -> "PolicyGradientOptions":
        """From the objective's config (extra keys such as temperature are ignored)."""
        return cls(**{f.name: type(f.default)(getattr(config, f.name))
                      for f in dataclasses.fields(cls)})


def policy_gradient_terms(logprobs: jax.Array, old_logprobs: jax.Array, advantages: jax.Array,
                          loss_mask: jax.Array, options: PolicyGradientOptions, *,
                          ref_logprobs: jax.Array | None = None,
                          sampler_logprobs: jax.Array | None = None,
                          entropy: jax.Array | None = None) -> tuple[jax.Array, jax.Array, dict]:
    """The objective's math on given per-token log-probs (all [B, T]; advantages [B] or [B, T]).

    Returns (loss_sum, denominator, metrics) as the objective contract defines them.
    """
    mask = loss_mask.astype(jnp.float32)
    scored = mask > 0
    old_logprobs = jax.lax.stop_gradient(old_logprobs)
    advantages = jax.lax.stop_gradient(jnp.asarray(advantages, jnp.float32))
    if advantages.ndim == 1:
        advantages = jnp.broadcast_to(advantages[:, None], mask.shape)
    advantages = jnp.where(scored, advantages, 0.0)

    ratio = jnp.exp(jnp.where(scored, logprobs - old_logprobs, 0.0))
    low, high = 1.0 - options.clip_eps_low, 1.0 + options.clip_eps_high
    pg_loss = jnp.maximum(-advantages * ratio, -advantages * jnp.clip(ratio, low, high))
    if options.dual_clip_c:
        pg_loss = jnp.where(advantages < 0,
                            jnp.minimum(pg_loss, -advantages * options.dual_clip_c), pg_loss)

    per_token_loss = pg_loss
    kl = None
    if ref_logprobs is not None:
        ref_logprobs = jax.lax.stop_gradient(ref_logprobs)
        estimator = KL_ESTIMATORS[options.kl_estimator]
        kl = jnp.where(scored, estimator(logprobs, jnp.where(scored, ref_logprobs, logprobs)), 0.0)
    if options.kl_coef:
        if kl is None:
            raise KeyError("kl_coef > 0 needs batch['ref_logprobs']")
        per_token_loss = per_token_loss + options.kl_coef * kl

    norm_length = options.loss_norm_length or mask.shape[1]
    aggregate = LOSS_AGGREGATIONS[options.loss_aggregation]
    loss_sum, denominator = aggregate(per_token_loss, mask, float(norm_length))

    tokens = jnp.sum(mask)
    masked_sum = lambda x: jnp.sum(jax.lax.stop_gradient(x) * mask)  # noqa: E731
    fraction = lambda condition: Mean.of(jnp.sum(condition * mask), tokens)  # noqa: E731
    ratio_const = jax.lax.stop_gradient(ratio)
    metrics = {
        "pg_loss": Mean.of(masked_sum(pg_loss), tokens),
        "clip_fraction_low": fraction((advantages < 0) & (ratio_const < low)),
        "clip_fraction_high": fraction((advantages > 0) & (ratio_const > high)),
        "ratio_min": Min.of(jnp.min(jnp.where(scored, ratio_const, jnp.inf))),
        "ratio_max": Max.of(jnp.max(jnp.where(scored, ratio_const, -jnp.inf))),
        "advantage": Mean.of(masked_sum(advantages), tokens),
        "response_tokens": Mean.of(tokens, _num_sequences(mask)),
    }
    if options.dual_clip_c:
        metrics["dual_clip_fraction"] = fraction((advantages < 0)
                                                 & (ratio_const > options.dual_clip_c))
    if kl is not None:
        metrics["kl"] = Mean.of(masked_sum(kl), tokens)
    if entropy is not None:
        metrics["entropy"] = Mean.of(masked_sum(entropy), tokens)
    if sampler_logprobs is not None:
        difference = jnp.abs(jnp.where(scored, sampler_logprobs - logprobs, 0.0))
        metrics["sampler_logprob_abs_diff"] = Mean.of(masked_sum(difference), tokens)
    return loss_sum, denominator, metrics


@register_objective("policy_gradient", clip_eps_low=0.2, clip_eps_high=0.2, dual_clip_c=0.0,
                    kl_coef=0.0, kl_estimator="k3", loss_aggregation="token_mean",
                    loss_norm_length=0, temperature=1.0, logits_chunk_size=1024,
                    report_entropy=True)
def policy_gradient_loss(params, batch, rng, *, model: ModelContext, config):
    """Clipped surrogate (+ optional KL) on the model's log-probs of `batch['targets']`.

    `temperature` must match the sampler's when rollouts were drawn at T != 1 and π_old was
    scored tempered; `report_entropy` adds the mean token entropy metric (one softmax pass).
    """
    del rng
    options = PolicyGradientOptions.from_config(config)
    hidden = model.hidden(params, batch)
    stats = token_statistics(model.config, params, hidden, batch["targets"],
                             chunk_size=int(config.logits_chunk_size),
                             temperature=float(config.temperature),
                             entropy=bool(config.report_entropy), sharding=model.sharding)
    old_logprobs = batch.get("old_logprobs")
    if old_logprobs is None:
        old_logprobs = jax.lax.stop_gradient(stats.logprobs)
    if options.kl_coef and "ref_logprobs" not in batch:
        raise KeyError("policy_gradient with kl_coef > 0 needs batch['ref_logprobs']")
    return policy_gradient_terms(
        stats.logprobs, old_logprobs, batch["advantages"], batch["loss_mask"], options,
        ref_logprobs=batch.get("ref_logprobs"),
        sampler_logprobs=batch.get("sampler_logprobs"),
        entropy=stats.entropy if config.report_entropy else None)
