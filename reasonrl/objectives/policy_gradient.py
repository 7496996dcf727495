"""Clipped policy-gradient objective for GRPO / Dr. GRPO / DAPO / GSPO (`policy_gradient`).

Per response token t of sequence i (m_it = loss_mask, |y_i| = Σ_t m_it), the importance ratio ρ
by `importance_ratio` (see IMPORTANCE_RATIOS), its log clamped to ±LOG_RATIO_CLAMP (±20, verl):

    token           ρ_it = π_θ(y_it) / π_old(y_it)                              PPO / GRPO / DAPO
    sequence        ρ_it = s_i = exp((1/|y_i|) Σ_t m_it (log π_θ(y_it) − log π_old(y_it)))  GSPO
    sequence_token  ρ_it = sg(s_i) · π_θ(y_it) / sg(π_θ(y_it))                        GSPO-token

    pg_it  = max(−A·ρ, −A·clip(ρ, 1 − ε_low, 1 + ε_high))            PPO / GRPO / DAPO clip-higher
    pg_it  = min(pg_it, −A·c)            where A < 0, if dual_clip_c = c > 1 (dual clip, verl)
    l_it   = pg_it + β · KL_k(π_θ ‖ π_ref)_it                           KL in the loss (GRPO), β ≥ 0

GSPO (Zheng et al. 2025, arXiv 2507.18071) clips whole sequences: with `sequence` ρ and A are one
value per row (advantages must be [B]), so pg_it = pg_i is the sequence's loss
−min(s_i·A_i, clip(s_i, 1 − ε_low, 1 + ε_high)·A_i), repeated at each of its tokens, and a clipped
sequence gets no gradient at all; the gradient of pg_i reaches every token, ∂s_i/∂log π_θ(y_it) =
s_i/|y_i|. `seq_mean_token_mean` then gives the paper's (1/G) Σ_i pg_i; `token_mean` weighs pg_i
by |y_i|, `seq_mean_token_sum_norm` by |y_i|/L. GSPO-token has the value s_i at every token but
routes its gradient per token (∂ρ_it/∂log π_θ(y_it) = s_i) and takes per-token advantages A_it;
with A_it = A_i its loss and gradient equal GSPO's under every aggregation. Dual clip, if on,
acts on the ratio in use (on s_i with `sequence`: a sequence with A_i < 0 and s_i > c is flat).

The log-ratio clamp (applied to the per-token log-ratio, and to GSPO's sequence mean) keeps ρ
finite: exp overflows float32 above ~88.7, and the clip's unused branch would then give the
backward 0·inf = NaN on a token the clip made constant. Beyond the clamp ρ is a constant (no
gradient): clipped tokens had none anyway; an unclipped one that far off-policy is dropped, as
in verl.

The loss is l aggregated by `loss_aggregation` (see LOSS_AGGREGATIONS): every mode returns a
(loss_sum, denominator) pair whose ratio, with both summed over micro-batches, is the mode's
exact full-batch loss. A, log π_old and log π_ref are constants (stop_gradient); gradient flows
through log π_θ only. Positions with m = 0 (prompt, padding, a zero-length response) are
neutralised before any arithmetic, so they contribute nothing and whatever they hold (junk,
±inf, NaN in old / ref / sampler log-probs or advantages) cannot produce inf or NaN.

Metrics: clip_fraction_low / high (and dual_clip_fraction) are fractions of response tokens
whose ratio is clipped, also with the sequence ratios (a clipped sequence counts its |y_i|
tokens, as the GSPO paper counts clipped tokens); ratio_min / ratio_max range over the ratios in
use (with `sequence` / `sequence_token`: over the non-empty sequences' s_i).

Batch (one sequence per row; packing several sequences into a row is not supported because the
sequence-level ratios and aggregations work per row):
  tokens, targets, positions, segment_ids   int32 [B, T]
  loss_mask        float32 [B, T]   1 on the response tokens being scored
  advantages       float32 [B] (outcome, broadcast over tokens) or [B, T] (per token; not with
                                    importance_ratio="sequence")
  old_logprobs     float32 [B, T]   log π_old(target) of the rollout policy as recomputed by the
                                    trainer; optional: absent means on-policy, π_old = sg(π_θ)
  ref_logprobs     float32 [B, T]   log π_ref(target); required only when kl_coef > 0 (with
                                    kl_coef = 0 it only feeds the `kl` metric when present)
  sampler_logprobs float32 [B, T]   optional, the sampler's own log-probs, for the
                                    `sampler_logprob_abs_diff` health metric only
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from reasonrl.objectives.logprobs import token_statistics
from reasonrl.objectives.metrics import Max, Mean, Min
from reasonrl.objectives.registry import (
    ModelContext,
    ReferenceHook,
    check_chunk_size,
    check_option,
    register_objective,
)

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


# |log ρ| bound before the exponential, verl's: ρ ∈ [e^−20, e^20] ≈ [2e−9, 5e8] stays finite in
# float32 (exp overflows above ~88.7) while leaving every realistic ratio untouched.
LOG_RATIO_CLAMP = 20.0

# (log π_θ, masked log π_θ − log π_old, mask), all [B, T] -> clamped log ρ [B, T].
LogRatio = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
IMPORTANCE_RATIOS: dict[str, LogRatio] = {}


def _importance_ratio(name: str):
    def decorator(fn: LogRatio) -> LogRatio:
        IMPORTANCE_RATIOS[name] = fn
        return fn

    return decorator


def _clamp(log_ratio: jax.Array) -> jax.Array:
    """Clamped to ±LOG_RATIO_CLAMP; no gradient where the clamp binds."""
    return jnp.clip(log_ratio, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)


def _sequence_mean_log_ratio(log_ratio: jax.Array, mask: jax.Array) -> jax.Array:
    """(1/|y_i|) Σ_t m·log ρ_it [B, 1], 0 for an empty row."""
    lengths = jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1)
    return jnp.sum(log_ratio * mask, axis=1, keepdims=True) / lengths


@_importance_ratio("token")
def token_log_ratio(logprobs, log_ratio, mask):
    """PPO / GRPO / DAPO: log ρ_it = log π_θ(y_it) − log π_old(y_it)."""
    del logprobs, mask
    return _clamp(log_ratio)


@_importance_ratio("sequence")
def sequence_log_ratio(logprobs, log_ratio, mask):
    """GSPO: log s_i, the sequence's mean token log-ratio, at each of its positions."""
    del logprobs
    return jnp.broadcast_to(_clamp(_sequence_mean_log_ratio(log_ratio, mask)), mask.shape)


@_importance_ratio("sequence_token")
def sequence_token_log_ratio(logprobs, log_ratio, mask):
    """GSPO-token: sg(log s_i) + log π_θ(y_it) − sg(log π_θ(y_it)): the value of log s_i, the
    gradient of log π_θ(y_it) (zero where the clamp binds, as with `sequence`)."""
    sg = jax.lax.stop_gradient
    own = jnp.where(mask > 0, logprobs - sg(logprobs), 0.0)
    return _clamp(sg(_sequence_mean_log_ratio(log_ratio, mask)) + own)


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
    importance_ratio: an IMPORTANCE_RATIOS name: token (PPO / GRPO) | sequence (GSPO: one
        ratio and one clip per sequence; needs advantages [B]) | sequence_token (GSPO-token).
    """

    clip_eps_low: float = 0.2
    clip_eps_high: float = 0.2
    dual_clip_c: float = 0.0
    kl_coef: float = 0.0
    kl_estimator: str = "k3"
    loss_aggregation: str = "token_mean"
    loss_norm_length: int = 0
    importance_ratio: str = "token"

    def __post_init__(self):
        check_option(
            0.0 <= self.clip_eps_low < 1.0,
            "clip_eps_low",
            f"must be in [0, 1), got {self.clip_eps_low}",
        )
        check_option(
            self.clip_eps_high >= 0.0, "clip_eps_high", f"must be >= 0, got {self.clip_eps_high}"
        )
        check_option(
            self.dual_clip_c == 0.0 or self.dual_clip_c > 1.0,
            "dual_clip_c",
            f"must be > 1 (or 0 to disable), got {self.dual_clip_c}",
        )
        check_option(self.kl_coef >= 0.0, "kl_coef", f"must be >= 0, got {self.kl_coef}")
        for option, registry in (
            ("kl_estimator", KL_ESTIMATORS),
            ("loss_aggregation", LOSS_AGGREGATIONS),
            ("importance_ratio", IMPORTANCE_RATIOS),
        ):
            check_option(
                getattr(self, option) in registry,
                option,
                f"{getattr(self, option)!r}; choose from {sorted(registry)}",
            )
        check_option(
            self.loss_norm_length >= 0,
            "loss_norm_length",
            f"must be >= 0, got {self.loss_norm_length}",
        )

    @classmethod
    def from_config(cls, config) -> PolicyGradientOptions:
        """From the objective's config (extra keys such as temperature are ignored)."""
        return cls(
            **{f.name: type(f.default)(getattr(config, f.name)) for f in dataclasses.fields(cls)}
        )


def policy_gradient_terms(
    logprobs: jax.Array,
    old_logprobs: jax.Array,
    advantages: jax.Array,
    loss_mask: jax.Array,
    options: PolicyGradientOptions,
    *,
    ref_logprobs: jax.Array | None = None,
    sampler_logprobs: jax.Array | None = None,
    entropy: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, dict]:
    """The objective's math on given per-token log-probs (all [B, T]; advantages [B] or [B, T]).

    Returns (loss_sum, denominator, metrics) as the objective contract defines them.
    """
    mask = loss_mask.astype(jnp.float32)
    scored = mask > 0
    old_logprobs = jax.lax.stop_gradient(old_logprobs)
    advantages = jax.lax.stop_gradient(jnp.asarray(advantages, jnp.float32))
    if options.importance_ratio == "sequence" and advantages.ndim != 1:
        raise ValueError(
            f"importance_ratio='sequence' (GSPO) takes one advantage per sequence, "
            f"[B], got shape {advantages.shape}; per-token advantages need "
            f"importance_ratio='sequence_token' (GSPO-token)"
        )
    if advantages.ndim == 1:
        advantages = jnp.broadcast_to(advantages[:, None], mask.shape)
    advantages = jnp.where(scored, advantages, 0.0)

    log_ratio = jnp.where(scored, logprobs - old_logprobs, 0.0)
    ratio = jnp.exp(IMPORTANCE_RATIOS[options.importance_ratio](logprobs, log_ratio, mask))
    low, high = 1.0 - options.clip_eps_low, 1.0 + options.clip_eps_high
    pg_loss = jnp.maximum(-advantages * ratio, -advantages * jnp.clip(ratio, low, high))
    if options.dual_clip_c:
        pg_loss = jnp.where(
            advantages < 0, jnp.minimum(pg_loss, -advantages * options.dual_clip_c), pg_loss
        )

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
        metrics["dual_clip_fraction"] = fraction(
            (advantages < 0) & (ratio_const > options.dual_clip_c)
        )
    if kl is not None:
        metrics["kl"] = Mean.of(masked_sum(kl), tokens)
    if entropy is not None:
        metrics["entropy"] = Mean.of(masked_sum(entropy), tokens)
    if sampler_logprobs is not None:
        difference = jnp.abs(jnp.where(scored, sampler_logprobs - logprobs, 0.0))
        metrics["sampler_logprob_abs_diff"] = Mean.of(masked_sum(difference), tokens)
    return loss_sum, denominator, metrics


def reference_logprobs(ref_params, batch: dict, *, model: ModelContext, config) -> dict:
    """The KL reference's fields: {"ref_logprobs": log π_ref(targets) float32 [B, T]}, scored
    at the objective's temperature (the engine runs it on the frozen initial params)."""
    hidden = model.hidden(ref_params, batch)
    stats = token_statistics(
        model.config,
        ref_params,
        hidden,
        batch["targets"],
        chunk_size=int(config.logits_chunk_size),
        temperature=float(config.temperature),
        sharding=model.sharding,
    )
    return {"ref_logprobs": stats.logprobs}


def _validate(config) -> None:
    PolicyGradientOptions.from_config(config)
    check_chunk_size(config)
    check_option(
        float(config.temperature) > 0, "temperature", f"must be > 0, got {config.temperature}"
    )


# The KL reference is loaded (a frozen copy of the initial params) only when kl_coef > 0.
KL_REFERENCE = ReferenceHook(reference_logprobs, needed=lambda config: config.kl_coef > 0)


@register_objective(
    "policy_gradient",
    loop="rl",
    reference=KL_REFERENCE,
    validate=_validate,
    clip_eps_low=0.2,
    clip_eps_high=0.2,
    dual_clip_c=0.0,
    kl_coef=0.0,
    kl_estimator="k3",
    loss_aggregation="token_mean",
    loss_norm_length=0,
    importance_ratio="token",
    temperature=1.0,
    logits_chunk_size=1024,
    report_entropy=True,
)
def policy_gradient_loss(params, batch, rng, *, model: ModelContext, config):
    """Clipped surrogate (+ optional KL) on the model's log-probs of `batch['targets']`.

    `temperature` must match the sampler's when rollouts were drawn at T != 1 and π_old was
    scored tempered; `report_entropy` adds the mean token entropy metric (one softmax pass).
    """
    del rng
    options = PolicyGradientOptions.from_config(config)
    hidden = model.hidden(params, batch)
    stats = token_statistics(
        model.config,
        params,
        hidden,
        batch["targets"],
        chunk_size=int(config.logits_chunk_size),
        temperature=float(config.temperature),
        entropy=bool(config.report_entropy),
        sharding=model.sharding,
    )
    old_logprobs = batch.get("old_logprobs")
    if old_logprobs is None:
        old_logprobs = jax.lax.stop_gradient(stats.logprobs)
    if options.kl_coef and "ref_logprobs" not in batch:
        raise KeyError("policy_gradient with kl_coef > 0 needs batch['ref_logprobs']")
    return policy_gradient_terms(
        stats.logprobs,
        old_logprobs,
        batch["advantages"],
        batch["loss_mask"],
        options,
        ref_logprobs=batch.get("ref_logprobs"),
        sampler_logprobs=batch.get("sampler_logprobs"),
        entropy=stats.entropy if config.report_entropy else None,
    )
