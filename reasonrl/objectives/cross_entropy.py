"""Token-level cross-entropy objectives: `next_token` (pretraining), `sft` and `spectrum`.

All minimise  -Σ_t m_t log p(y_t | x_<t)  / Σ_t m_t  over the batch's `loss_mask` m. For
pretraining the pipeline's mask covers every real token (not padding, not a document's last
token); for SFT it covers response tokens only. `next_token` adds the optional z-loss
(PaLM): z_loss_coef · Σ_t m_t (log Z_t)^2, which keeps the softmax normaliser near 1.

Batch: tokens, targets, segment_ids, positions int32 [B, T]; loss_mask float32 [B, T].
"""

from __future__ import annotations

import jax.numpy as jnp

from reasonrl.objectives.logprobs import token_statistics
from reasonrl.objectives.metrics import Mean
from reasonrl.objectives.registry import (
    ModelContext,
    check_chunk_size,
    check_option,
    register_objective,
)


def _cross_entropy(
    params, batch, *, model: ModelContext, z_loss_coef: float, chunk_size: int, report_entropy: bool
):
    hidden = model.hidden(params, batch)
    stats = token_statistics(
        model.config,
        params,
        hidden,
        batch["targets"],
        chunk_size=chunk_size,
        entropy=report_entropy,
        sharding=model.sharding,
    )
    mask = batch["loss_mask"].astype(jnp.float32)
    tokens = jnp.sum(mask)
    nll_sum = -jnp.sum(stats.logprobs * mask)
    z_loss_sum = jnp.sum(jnp.square(stats.logsumexp) * mask)
    loss_sum = nll_sum + z_loss_coef * z_loss_sum
    metrics = {
        "nll": Mean.of(nll_sum, tokens),
        "z_loss": Mean.of(z_loss_sum, tokens),
        "accuracy": Mean.of(jnp.sum(stats.argmax_match * mask), tokens),
        "tokens": Mean.of(tokens, 1.0),
    }
    if report_entropy:
        metrics["entropy"] = Mean.of(jnp.sum(stats.entropy * mask), tokens)
    return loss_sum, tokens, metrics


def _validate_next_token(config) -> None:
    check_option(
        float(config.z_loss_coef) >= 0, "z_loss_coef", f"must be >= 0, got {config.z_loss_coef}"
    )
    check_chunk_size(config)


@register_objective(
    "next_token",
    validate=_validate_next_token,
    z_loss_coef=0.0,
    logits_chunk_size=1024,
    report_entropy=False,
)
def next_token_loss(params, batch, rng, *, model: ModelContext, config):
    """Pretraining loss with optional z-loss (`config.z_loss_coef`)."""
    del rng
    return _cross_entropy(
        params,
        batch,
        model=model,
        z_loss_coef=float(config.z_loss_coef),
        chunk_size=int(config.logits_chunk_size),
        report_entropy=bool(config.report_entropy),
    )


@register_objective("sft", validate=check_chunk_size, logits_chunk_size=1024, report_entropy=False)
def sft_loss(params, batch, rng, *, model: ModelContext, config):
    """Supervised fine-tuning: cross-entropy on response tokens (the pipeline's loss_mask)."""
    del rng
    return _cross_entropy(
        params,
        batch,
        model=model,
        z_loss_coef=0.0,
        chunk_size=int(config.logits_chunk_size),
        report_entropy=bool(config.report_entropy),
    )


@register_objective(
    "spectrum", validate=check_chunk_size, logits_chunk_size=1024, report_entropy=False
)
def spectrum_loss(params, batch, rng, *, model: ModelContext, config):
    """Spectrum tuning (Sorensen et al. 2025): cross-entropy on the outputs of many exchangeable
    samples per sequence, -Σ_j Σ_{tok ∈ y_j + EOT} log p(tok | d, (x, y)_<j, x_j) over the
    global count of loss tokens. The formula is SFT's; the mask (from the `spectrum` data task)
    is what makes it spectrum tuning, and the name keeps recipes reading as what they are."""
    return sft_loss(params, batch, rng, model=model, config=config)
