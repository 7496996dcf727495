"""The Bradley–Terry pairwise loss shared by the reward model and DPO.

Both score a chosen and a rejected response and minimise −log σ(r_chosen − r_rejected): the
reward model with an explicit scalar head, DPO with the implicit reward β·(log π_θ − log π_ref).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reasonrl.objectives.metrics import Mean


def bradley_terry_terms(
    chosen_rewards: jax.Array,
    rejected_rewards: jax.Array,
    pair_mask: jax.Array,
    margin: jax.Array | float = 0.0,
) -> tuple[jax.Array, jax.Array, dict]:
    """Σ_b mask·(−log σ(r_w − r_l − margin)), Σ_b mask and metrics, from rewards [B]."""
    pair_mask = pair_mask.astype(jnp.float32)
    difference = chosen_rewards - rejected_rewards
    per_pair = -jax.nn.log_sigmoid(difference - margin)
    pairs = jnp.sum(pair_mask)
    mean = lambda x: Mean.of(jnp.sum(jax.lax.stop_gradient(x) * pair_mask), pairs)  # noqa: E731
    metrics = {
        "loss": mean(per_pair),
        "accuracy": mean((difference > 0).astype(jnp.float32)),
        "reward_margin": mean(difference),
        "chosen_reward": mean(chosen_rewards),
        "rejected_reward": mean(rejected_rewards),
    }
    return jnp.sum(per_pair * pair_mask), pairs, metrics
