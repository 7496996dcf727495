"""RLP, Reinforcement as a Pretraining Objective (Hatamizadeh et al. 2025, arXiv 2510.01265):
the objective `rlp` and its math. Its loop (positions, thoughts, rewards) is `reasonrl.rlp.loop`.

At a position t of a document x, the model θ samples G thoughts c^(i) ~ π_θ(· | x_<t) and is
rewarded by how much each thought helps it predict the observed next token(s) (the information
gain, eq. 5-6), measured against a no-think baseline p̄_φ that is an EMA of θ:

    r(c)   = Σ_k m_k (log p_θ(x_{t+k} | x_<t, c) − log p̄_φ(x_{t+k} | x_<t))     k < score_tokens
    A^(i)  = G/(G−1) · (r(c^(i)) − (1/G) Σ_j r(c^(j)))            eq. 7: no std, sg(A)
    L      = (1/BG) Σ_b Σ_i −(1/|c^(b,i)|) Σ_u min(ρ_u·A, clip(ρ_u, 1−ε_low, 1+ε_high)·A)   eq. 8
    φ      ← θ at the first step (lazy init), then φ ← τφ + (1−τ)θ after every optimizer step

r is a constant (the paper's §2 and methods.md §1(d)): no gradient reaches the reasoned scorer
p_θ (although it shares θ) nor the EMA baseline; the gradient reaches the thought tokens only.
There is no next-token-prediction term. The paper does not give ε nor how positions are chosen;
here ε_low = ε_high = 0.2 (PPO's) and positions are uniform over the document's valid tokens
after `min_context` (`sample_positions`).

φ is the objective's state in the train state (`EMA_TEACHER`, a `StateHook`): float32, sharded
like the params, checkpointed and restored with them. The paper's lazy init (φ ← θ on the first
batch) happens when the train state is created, which is the same params: a stage's first
rewards are measured against φ = θ_0.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from reasonrl.objectives.logprobs import token_statistics
from reasonrl.objectives.policy_gradient import (
    KL_ESTIMATORS,
    KL_REFERENCE,
    LOG_RATIO_CLAMP,
    PolicyGradientOptions,
    policy_gradient_terms,
)
from reasonrl.objectives.registry import (
    ModelContext,
    StateHook,
    check_option,
    register_objective,
)
from reasonrl.rl.advantages import rloo_advantages

__all__ = [
    "EMA_TEACHER",
    "LOG_RATIO_CLAMP",
    "RlpOptions",
    "ema_update",
    "information_gain",
    "rlp_advantages",
    "rlp_loss",
    "rlp_loss_terms",
    "sample_positions",
]


@dataclasses.dataclass(frozen=True)
class RlpOptions:
    """RLP's options; defaults are the paper's where it gives them (§5, §9, Tab. S.1).

    group_size: G thoughts per context (paper: 16; ≥ 2, the leave-one-out baseline needs two).
    num_positions: positions t sampled per document per step (not in the paper; ≥ 1).
    min_context: the smallest t, i.e. the fewest context tokens before the scored one (not in
        the paper; ≥ 0).
    max_thought_tokens: the thought's generation budget (paper: 2048).
    ema_decay: τ of the EMA baseline φ ← τφ + (1−τ)θ (paper: 0.999), in (0, 1).
    clip_eps_low / clip_eps_high: ε_low, ε_high of the ratio clip (not in the paper: 0.2 / 0.2).
    kl_coef: β of a KL(π_θ ‖ π_ref) penalty on the thought tokens (paper: 0); with β > 0 the
        loss needs ref log-probs. kl_estimator: a policy_gradient.KL_ESTIMATORS name.
    temperature: the thoughts' rollout temperature (paper: 0.7); π_old must be scored at it.
    score_tokens: how many next tokens x_t .. x_{t+k−1} the reward scores (paper: 1).
    thought_open / thought_close: the text around a thought (default: the thinking markers of
        Qwen3 / DeepSeek-R1 chat templates). thought_close must be one token of the tokenizer:
        it ends a thought when sampled, and is appended to a thought cut at max_thought_tokens.
    num_minibatches / update_epochs: optimizer updates per step = their product (paper: one;
        then π_old = sg(π_θ) and the ratio is 1; more make the clip matter, as in PPO).
    logits_chunk_size: rows of the [T, V] logits materialised at once (log-prob chunking).
    report_entropy: log the thought tokens' mean entropy (one more softmax pass).
    """

    group_size: int = 16
    num_positions: int = 1
    min_context: int = 64
    max_thought_tokens: int = 2048
    ema_decay: float = 0.999
    clip_eps_low: float = 0.2
    clip_eps_high: float = 0.2
    kl_coef: float = 0.0
    kl_estimator: str = "k3"
    temperature: float = 0.7
    score_tokens: int = 1
    thought_open: str = "<think>"
    thought_close: str = "</think>"
    num_minibatches: int = 1
    update_epochs: int = 1
    logits_chunk_size: int = 1024
    report_entropy: bool = True

    def __post_init__(self):
        for option, valid, rule in (
            ("group_size", self.group_size >= 2, "must be >= 2"),
            ("num_positions", self.num_positions >= 1, "must be >= 1"),
            ("min_context", self.min_context >= 0, "must be >= 0"),
            ("max_thought_tokens", self.max_thought_tokens >= 1, "must be >= 1"),
            ("ema_decay", 0.0 < self.ema_decay < 1.0, "must be in (0, 1)"),
            ("clip_eps_low", 0.0 <= self.clip_eps_low < 1.0, "must be in [0, 1)"),
            ("clip_eps_high", self.clip_eps_high >= 0.0, "must be >= 0"),
            ("kl_coef", self.kl_coef >= 0.0, "must be >= 0"),
            ("temperature", self.temperature > 0.0, "must be > 0"),
            ("score_tokens", self.score_tokens >= 1, "must be >= 1"),
            ("thought_close", bool(self.thought_close), "must be a token, got ''"),
            ("num_minibatches", self.num_minibatches >= 1, "must be >= 1"),
            ("update_epochs", self.update_epochs >= 1, "must be >= 1"),
            ("logits_chunk_size", self.logits_chunk_size >= 1, "must be >= 1"),
        ):
            check_option(valid, option, f"{rule}, got {getattr(self, option)}")
        check_option(
            self.kl_estimator in KL_ESTIMATORS,
            "kl_estimator",
            f"{self.kl_estimator!r}; choose from {sorted(KL_ESTIMATORS)}",
        )

    @classmethod
    def from_config(cls, config) -> RlpOptions:
        """From the objective's config (extra keys are ignored)."""
        return cls(
            **{f.name: type(f.default)(getattr(config, f.name)) for f in dataclasses.fields(cls)}
        )

    def policy_gradient_options(self) -> PolicyGradientOptions:
        """The clipped surrogate of eq. 8: token ratios, per-thought length normalisation, then
        the mean over thoughts (`seq_mean_token_mean`)."""
        return PolicyGradientOptions(
            clip_eps_low=self.clip_eps_low,
            clip_eps_high=self.clip_eps_high,
            kl_coef=self.kl_coef,
            kl_estimator=self.kl_estimator,
            loss_aggregation="seq_mean_token_mean",
            importance_ratio="token",
        )


def information_gain(
    reasoned_logprobs: jax.Array, baseline_logprobs: jax.Array, target_mask: jax.Array
) -> jax.Array:
    """RLP's reward r = Σ_k m_k (log p_θ(x_{t+k} | x_<t, c) − log p̄_φ(x_{t+k} | x_<t)).

    reasoned_logprobs  float [N, K]  teacher-forced log-probs of the scored window x_t ..
                                     x_{t+K−1} under θ after the thought c (one row per thought)
    baseline_logprobs  float [N, K]  the same tokens under the EMA baseline φ, without a thought
    target_mask        [N, K]        1 / True on the window tokens that exist and count (a
                                     window running past the document's end, padding: 0)
    Returns float32 [N]. Both inputs are stop-gradient (the reward is a constant); masked
    entries are never read, so junk (±inf, NaN) there is harmless.
    """
    scored = jnp.asarray(target_mask).astype(bool)
    reasoned = jax.lax.stop_gradient(jnp.asarray(reasoned_logprobs, jnp.float32))
    baseline = jax.lax.stop_gradient(jnp.asarray(baseline_logprobs, jnp.float32))
    return jnp.sum(jnp.where(scored, reasoned - baseline, 0.0), axis=-1)


def rlp_advantages(rewards: jax.Array, group_size: int) -> jax.Array:
    """A_i = G/(G−1) · (r_i − mean_j r_j) within each group (eq. 7), stop-gradient.

    rewards  float [num_groups * G], the G thoughts of one context in contiguous rows.
    Returns float32 [num_groups * G]; exactly 0 in a group of equal rewards. This is
    `reasonrl.rl.advantages.rloo_advantages` (r_i minus the mean of the other G − 1), except that
    G = 1 is an error here (ObjectiveOptionError on group_size) instead of advantage 0.
    """
    check_option(
        int(group_size) >= 2,
        "group_size",
        f"RLP's leave-one-out baseline needs >= 2 thoughts per context, got {group_size}",
    )
    return jax.lax.stop_gradient(rloo_advantages(rewards, int(group_size)))


def rlp_loss_terms(
    logprobs: jax.Array,
    old_logprobs: jax.Array,
    advantages: jax.Array,
    thought_mask: jax.Array,
    options: RlpOptions,
    *,
    ref_logprobs: jax.Array | None = None,
    entropy: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, dict]:
    """RLP's clipped surrogate (eq. 8, plus β·KL if kl_coef > 0) on the thought tokens.

    logprobs       float [N, T]  log π_θ(ℓ_u | x_<t, ℓ_<u) of each row's tokens (N = B·G rows)
    old_logprobs   float [N, T]  the same under π_old (the rollout policy, at `temperature`)
    advantages     float [N]     from `rlp_advantages` (stop-gradient here)
    thought_mask   [N, T]        1 on the thought tokens only: never on the context x_<t nor on
                                 the scored token(s); an all-zero row (a dropped position,
                                 padding) contributes nothing
    ref_logprobs   float [N, T]  log π_ref, needed only when kl_coef > 0
    entropy        float [N, T]  the policy's token entropies, for the `entropy` metric

    Returns (loss_sum, denominator, metrics): loss_sum = Σ_i (1/|c_i|) Σ_u l_iu over the
    non-empty thoughts and denominator = their number, so loss_sum / denominator summed over
    micro-batches is the exact (1/BG) Σ mean. The clip and the log-ratio clamp (±LOG_RATIO_CLAMP)
    are `policy_gradient_terms`'s with loss_aggregation="seq_mean_token_mean". Metrics: its
    pg_loss / clip_fraction_low / clip_fraction_high / ratio_min / ratio_max / advantage (/ kl),
    plus thought_length (tokens per non-empty thought). The information-gain metrics are the
    loop's (`reasonrl.rlp.loop`), from the rewards it computed.
    """
    if options.kl_coef and ref_logprobs is None:
        raise KeyError("RLP with kl_coef > 0 needs ref_logprobs")
    mask = jnp.asarray(thought_mask).astype(jnp.float32)
    loss_sum, denominator, metrics = policy_gradient_terms(
        logprobs,
        old_logprobs,
        jnp.asarray(advantages, jnp.float32),
        mask,
        options.policy_gradient_options(),
        ref_logprobs=ref_logprobs,
        entropy=entropy,
    )
    metrics["thought_length"] = metrics.pop("response_tokens")
    return loss_sum, denominator, metrics


def ema_update(ema_params, params, decay):
    """One step of the EMA baseline: φ ← τφ + (1−τ)θ with τ = `decay`.

    ema_params / params: pytrees of the same structure (any leaf shapes). The mix is computed
    in float32 and cast to each EMA leaf's dtype (keep φ in float32: with τ = 0.999 a bfloat16
    φ would round most updates away). Pass τ as a Python float (closed over, not a jit
    argument) to get 1 − τ exact to float32. Returns the new EMA params, stop-gradient.
    """
    # 1 − τ: from a Python float it is taken in float64 (float32's 1 − 0.999 is 1.3e-5 off).
    weight = 1.0 - (decay if isinstance(decay, (int, float)) else jnp.asarray(decay, jnp.float32))
    weight = jax.lax.stop_gradient(jnp.asarray(weight, jnp.float32))

    def leaf(ema, param):
        dtype = ema.dtype
        ema = jax.lax.stop_gradient(ema).astype(jnp.float32)
        param = jax.lax.stop_gradient(param).astype(jnp.float32)
        return (ema + weight * (param - ema)).astype(dtype)  # = τφ + (1 − τ)θ

    return jax.tree.map(leaf, ema_params, params)


def init_ema_teacher(params, config) -> dict:
    """The EMA teacher's state at the first step: {"ema_params": float32 copy of θ} (lazy
    init: φ ← θ)."""
    del config
    return {"ema_params": jax.tree.map(lambda p: jnp.asarray(p, jnp.float32), params)}


def update_ema_teacher(extra: dict, params, config) -> dict:
    """After an optimizer step: φ ← τφ + (1−τ)θ with τ = config.ema_decay."""
    return {"ema_params": ema_update(extra["ema_params"], params, float(config.ema_decay))}


EMA_TEACHER = StateHook(
    init=init_ema_teacher,
    update=update_ema_teacher,
    shardings=lambda param_shardings, mesh: {"ema_params": param_shardings},
)


def _validate(config) -> None:
    RlpOptions.from_config(config)


@register_objective(
    "rlp",
    loop="rlp",
    reference=KL_REFERENCE,
    state=EMA_TEACHER,
    validate=_validate,
    **{f.name: f.default for f in dataclasses.fields(RlpOptions)},
)
def rlp_loss(params, batch, rng, *, model: ModelContext, config):
    """RLP's loss on a batch of thought rows (built by `reasonrl.rlp.loop`).

    batch: tokens / positions / segment_ids / targets int [N, T] (context, thought, scored
    tokens), loss_mask [N, T] (1 where the target is a thought token), advantages float [N],
    optional old_logprobs [N, T] (π_old at `temperature`; default sg(π_θ)) and ref_logprobs
    (kl_coef > 0). Log-probs are taken at `temperature`, the thoughts' sampling temperature.
    """
    del rng
    options = RlpOptions.from_config(config)
    hidden = model.hidden(params, batch)
    stats = token_statistics(
        model.config,
        params,
        hidden,
        batch["targets"],
        chunk_size=options.logits_chunk_size,
        temperature=options.temperature,
        entropy=options.report_entropy,
        sharding=model.sharding,
    )
    old_logprobs = batch.get("old_logprobs")
    if old_logprobs is None:
        old_logprobs = jax.lax.stop_gradient(stats.logprobs)
    return rlp_loss_terms(
        stats.logprobs,
        old_logprobs,
        batch["advantages"],
        batch["loss_mask"],
        options,
        ref_logprobs=batch.get("ref_logprobs"),
        entropy=stats.entropy if options.report_entropy else None,
    )


def sample_positions(
    valid_mask: jax.Array, num_positions: int, min_context: int, rng: jax.Array
) -> jax.Array:
    """Positions t to predict at, int32 [B, num_positions], uniform over each row's eligible
    positions: t ≥ min_context with valid_mask[b, t] (a scoreable token: not padding, not a
    special token). Context x_<t = tokens[b, :t]; the scored window starts at t.

    valid_mask     bool [B, T]
    num_positions  static int ≥ 1
    min_context    int ≥ 0
    rng            PRNG key; the result is a deterministic function of it.

    Without replacement when the row has ≥ num_positions eligible positions (then distinct);
    otherwise every eligible position once and the remaining slots drawn with replacement. A
    row with no eligible position gets -1 in every slot: callers must mask those out (drop
    the position, zero its thought_mask and target_mask) and never index with them.
    """
    valid = jnp.asarray(valid_mask).astype(bool)
    batch, length = valid.shape
    eligible = valid & (jnp.arange(length)[None, :] >= min_context)
    count = jnp.sum(eligible, axis=1, keepdims=True)  # [B, 1]
    key_order, key_fill = jax.random.split(rng)
    # iid uniform keys, ineligible at -1: the top-k indices are a uniformly random ordering of
    # the eligible positions (distinct), followed by ineligible ones where count < k.
    keys = jnp.where(eligible, jax.random.uniform(key_order, (batch, length)), -1.0)
    top = min(num_positions, length)
    _, order = jax.lax.top_k(keys, top)  # [B, top]
    slots = jnp.arange(num_positions)[None, :]
    fill = jnp.floor(
        jax.random.uniform(key_fill, (batch, num_positions)) * count.astype(jnp.float32)
    )
    fill = jnp.minimum(fill.astype(jnp.int32), jnp.maximum(count - 1, 0))
    # slot j < count: the j-th of the random ordering; beyond: a uniform pick among the first
    # `count` (all eligible, and count ≤ top there since count < num_positions and ≤ T).
    index = jnp.clip(jnp.where(slots < count, slots, fill), 0, top - 1)
    positions = jnp.take_along_axis(order, index, axis=1)
    return jnp.where(count > 0, positions, -1).astype(jnp.int32)
