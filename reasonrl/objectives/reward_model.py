"""Bradley–Terry reward model (`reward_model`; InstructGPT, arXiv 2203.02155).

The reward r(x, y) is a linear head on the decoder's final (normed) hidden state at the last
non-pad token of the sequence: r = h_last · kernel + bias. For a pair (y_w preferred over y_l):

    loss = −log σ(r(x, y_w) − r(x, y_l) − margin)     averaged over pairs

`margin` is an optional per-pair batch field (Llama-2 style; 0 when absent). InstructGPT's
C(K, 2) pairs per prompt are simply K(K−1)/2 rows here.

Params: {"model": <decoder params>, "reward_head": {"kernel": float32 [D], "bias": float32 []}}
(`init_reward_model_params` builds them; `reward_scores` scores sequences with them).

Pair batch (row b of every field is one pair):
  chosen_tokens, chosen_positions, chosen_segment_ids         int32 [B, T]
  chosen_last_index                                           int32 [B]  last non-pad position
  rejected_<same four fields>
  margin      float32 [B]  optional
  pair_mask   float32 [B]  optional, 0 for padding pairs (default: every pair counts)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reasonrl.models import ModelConfig, init_params
from reasonrl.objectives.dpo import PAIR_SIDES, stacked_pair
from reasonrl.objectives.pairwise import bradley_terry_terms
from reasonrl.objectives.registry import ModelContext, register_objective

REWARD_FIELDS = ("tokens", "positions", "segment_ids", "last_index")


def init_reward_head(config: ModelConfig, rng: jax.Array) -> dict:
    """kernel ~ N(0, 1/D) [D], bias 0: initial rewards of order 1 on RMS-normed states."""
    kernel = jax.random.normal(rng, (config.hidden_size,), jnp.float32)
    return {"kernel": kernel / jnp.sqrt(config.hidden_size), "bias": jnp.zeros((), jnp.float32)}


def init_reward_model_params(config: ModelConfig, rng: jax.Array) -> dict:
    """Fresh decoder + head params. To start from an SFT model, put its params under "model"."""
    model_rng, head_rng = jax.random.split(rng)
    return {"model": init_params(config, model_rng),
            "reward_head": init_reward_head(config, head_rng)}


def reward_scores(model: ModelContext, params: dict, tokens: jax.Array, positions: jax.Array,
                  segment_ids: jax.Array, last_index: jax.Array) -> jax.Array:
    """Scalar rewards float32 [B] for sequences [B, T] ending at `last_index` [B]."""
    hidden = model.hidden(params["model"], {"tokens": tokens, "positions": positions,
                                            "segment_ids": segment_ids})
    last = jnp.take_along_axis(hidden, last_index[:, None, None].astype(jnp.int32), axis=1)[:, 0]
    head = params["reward_head"]
    return last.astype(jnp.float32) @ head["kernel"] + head["bias"]


@register_objective("reward_model")
def reward_model_loss(params, batch, rng, *, model: ModelContext, config):
    """Bradley–Terry loss; both sides scored in one [2B, T] forward pass."""
    del rng, config
    both = stacked_pair(batch, REWARD_FIELDS)
    rewards = reward_scores(model, params, both["tokens"], both["positions"],
                            both["segment_ids"], both["last_index"])
    chosen, rejected = jnp.split(rewards, len(PAIR_SIDES))
    pair_mask = batch.get("pair_mask", jnp.ones_like(chosen))
    return bradley_terry_terms(chosen, rejected, pair_mask, batch.get("margin", 0.0))
