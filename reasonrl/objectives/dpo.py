"""Direct Preference Optimisation (`dpo`, arXiv 2305.18290; eric-mitchell trainers.py).

With log π(y) = Σ_t m_t log π(y_t | x, y_<t) summed over RESPONSE tokens only (loss_mask m):

    h    = β · [(log π_θ(y_w) − log π_ref(y_w)) − (log π_θ(y_l) − log π_ref(y_l))]
    loss = −log σ(h)                          averaged over preference pairs

The reference log-probs are precomputed constants (stop_gradient): compute them once per batch
with `reference_logprobs(model, ref_params, batch)` (the frozen SFT model) and add them to the
batch. The stage engine does so for every train and eval batch (the objective's registered
`ReferenceHook`), with the stage's initial params as the reference. Conservative DPO's label
smoothing is not implemented (not in methods.md §5).

Pair batch (row b of every field is one pair; both sides padded to the same length T, so the
pair is never split across micro-batches):
  chosen_tokens, chosen_targets, chosen_positions, chosen_segment_ids       int32 [B, T]
  chosen_loss_mask                                                         float32 [B, T]
  rejected_<same five fields>                                              [B, T]
  ref_chosen_logps, ref_rejected_logps                                     float32 [B]
  pair_mask                                                      float32 [B]  optional
A pair counts only if both responses have at least one scored token (and its pair_mask, when
given, is 1); an all-masked pair (batch padding, a zero-length response) contributes nothing to
loss, denominator or metrics.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reasonrl.objectives.logprobs import token_statistics
from reasonrl.objectives.pairwise import bradley_terry_terms
from reasonrl.objectives.registry import (
    ModelContext,
    ReferenceHook,
    check_chunk_size,
    check_option,
    register_objective,
)

PAIR_SIDES = ("chosen", "rejected")
SEQUENCE_FIELDS = ("tokens", "targets", "positions", "segment_ids", "loss_mask")


def pair_side(batch: dict, side: str, fields=SEQUENCE_FIELDS) -> dict:
    """{field: batch[f"{side}_{field}"]}: one side of a pair batch as a plain sequence batch."""
    return {field: batch[f"{side}_{field}"] for field in fields}


def stacked_pair(batch: dict, fields=SEQUENCE_FIELDS) -> dict:
    """Chosen rows then rejected rows, [2B, T], so both sides share one forward pass."""
    sides = [pair_side(batch, side, fields) for side in PAIR_SIDES]
    return {field: jnp.concatenate([s[field] for s in sides], axis=0) for field in fields}


def sequence_logprobs(
    model: ModelContext, params, batch: dict, *, chunk_size: int = 1024, temperature: float = 1.0
) -> jax.Array:
    """Σ_t loss_mask · log p(targets) per row, float32 [B], for a plain sequence batch."""
    hidden = model.hidden(params, batch)
    stats = token_statistics(
        model.config,
        params,
        hidden,
        batch["targets"],
        chunk_size=chunk_size,
        temperature=temperature,
        sharding=model.sharding,
    )
    return jnp.sum(stats.logprobs * batch["loss_mask"].astype(jnp.float32), axis=1)


def pair_logprobs(
    model: ModelContext, params, batch: dict, *, chunk_size: int = 1024
) -> tuple[jax.Array, jax.Array]:
    """(chosen, rejected) sequence log-probs, each [B], from one [2B, T] forward pass."""
    both = sequence_logprobs(model, params, stacked_pair(batch), chunk_size=chunk_size)
    return jnp.split(both, 2)


def reference_logprobs(
    model: ModelContext, ref_params, batch: dict, *, chunk_size: int = 1024
) -> dict:
    """The batch fields `ref_chosen_logps` / `ref_rejected_logps` [B] under frozen params."""
    chosen, rejected = pair_logprobs(model, ref_params, batch, chunk_size=chunk_size)
    return {"ref_chosen_logps": chosen, "ref_rejected_logps": rejected}


def dpo_terms(
    policy_chosen: jax.Array,
    policy_rejected: jax.Array,
    ref_chosen: jax.Array,
    ref_rejected: jax.Array,
    pair_mask: jax.Array,
    *,
    beta: float,
) -> tuple[jax.Array, jax.Array, dict]:
    """DPO on sequence log-probs (all [B]); pair_mask [B] is 1 for pairs that count.

    Returns (Σ_b mask·(−log σ(h_b)), Σ_b mask, metrics); rewards are β·(log π_θ − log π_ref).
    """
    pair_mask = pair_mask.astype(jnp.float32)
    chosen_reward = beta * (policy_chosen - jax.lax.stop_gradient(ref_chosen))
    rejected_reward = beta * (policy_rejected - jax.lax.stop_gradient(ref_rejected))
    return bradley_terry_terms(chosen_reward, rejected_reward, pair_mask)


def valid_pairs(batch: dict) -> jax.Array:
    """1.0 where both responses of the pair have at least one scored token (and the batch's
    optional pair_mask is set), [B]."""
    has_tokens = [jnp.sum(batch[f"{side}_loss_mask"], axis=1) > 0 for side in PAIR_SIDES]
    valid = (has_tokens[0] & has_tokens[1]).astype(jnp.float32)
    if "pair_mask" in batch:
        valid = valid * (batch["pair_mask"] > 0).astype(jnp.float32)
    return valid


def _reference_fields(ref_params, batch: dict, *, model: ModelContext, config) -> dict:
    return reference_logprobs(model, ref_params, batch, chunk_size=int(config.logits_chunk_size))


def _validate(config) -> None:
    check_option(float(config.beta) > 0, "beta", f"must be > 0, got {config.beta}")
    check_chunk_size(config)


@register_objective(
    "dpo",
    reference=ReferenceHook(_reference_fields),
    validate=_validate,
    beta=0.1,
    logits_chunk_size=1024,
)
def dpo_loss(params, batch, rng, *, model: ModelContext, config):
    """DPO with precomputed reference log-probs; `beta` is β (paper: 0.1)."""
    del rng
    policy_chosen, policy_rejected = pair_logprobs(
        model, params, batch, chunk_size=int(config.logits_chunk_size)
    )
    return dpo_terms(
        policy_chosen,
        policy_rejected,
        batch["ref_chosen_logps"],
        batch["ref_rejected_logps"],
        valid_pairs(batch),
        beta=float(config.beta),
    )
