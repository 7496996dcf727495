"""Bradley–Terry reward model (`reward_model`; InstructGPT, arXiv 2203.02155).

The reward r(x, y) is a linear head on the decoder's final (normed) hidden state at the last
non-pad token of the sequence: r = h_last · kernel + bias. For a pair (y_w preferred over y_l):

    loss = −log σ(r(x, y_w) − r(x, y_l) − margin)     averaged over pairs

`margin` is an optional per-pair batch field (Llama-2 style; 0 when absent). InstructGPT's
C(K, 2) pairs per prompt are simply K(K−1)/2 rows here.

Params: {"model": <decoder params>, "reward_head": {"kernel": float32 [D], "bias": float32 []}}
(`init_reward_model_params` builds them; `reward_scores` scores sequences with them). Trained by
the stage engine (`reasonrl.train.engine.build_stage`), which starts the decoder from the stage's
model source and a fresh head, keeps the head replicated, and exports the decoder as a Hugging
Face checkpoint plus the head as `reward_head.safetensors` next to it;
`load_reward_model(export_dir)` reads both back.

Pair batch (row b of every field is one pair):
  chosen_tokens, chosen_positions, chosen_segment_ids         int32 [B, T]
  chosen_last_index                                           int32 [B]  last non-pad position
  rejected_<same four fields>
  margin      float32 [B]  optional
  pair_mask   float32 [B]  optional, 0 for padding pairs (default: every pair counts)
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import safetensors.numpy
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from reasonrl import models
from reasonrl.models import ModelConfig, init_params
from reasonrl.objectives.dpo import PAIR_SIDES, stacked_pair
from reasonrl.objectives.pairwise import bradley_terry_terms
from reasonrl.objectives.registry import ModelContext, ParamsHooks, register_objective

REWARD_FIELDS = ("tokens", "positions", "segment_ids", "last_index")
REWARD_HEAD_FILE = "reward_head.safetensors"


def init_reward_head(config: ModelConfig, rng: jax.Array) -> dict:
    """kernel ~ N(0, 1/D) [D], bias 0: initial rewards of order 1 on RMS-normed states."""
    kernel = jax.random.normal(rng, (config.hidden_size,), jnp.float32)
    return {"kernel": kernel / jnp.sqrt(config.hidden_size), "bias": jnp.zeros((), jnp.float32)}


def init_reward_model_params(config: ModelConfig, rng: jax.Array) -> dict:
    """Fresh decoder + head params. To start from an SFT model, put its params under "model"."""
    model_rng, head_rng = jax.random.split(rng)
    return {
        "model": init_params(config, model_rng),
        "reward_head": init_reward_head(config, head_rng),
    }


def _build_params(config: ModelConfig, decoder_params, rng: jax.Array) -> dict:
    """The stage's decoder params (already placed) under "model" and a fresh head."""
    return {"model": decoder_params, "reward_head": init_reward_head(config, rng)}


def _shardings(config: ModelConfig, decoder_shardings, mesh: Mesh) -> dict:
    """Decoder as `models.param_shardings`; the (tiny) head replicated."""
    replicated = NamedSharding(mesh, PartitionSpec())
    return {"model": decoder_shardings, "reward_head": {"kernel": replicated, "bias": replicated}}


def _host(x: jax.Array) -> np.ndarray:
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(jax.device_get(x))
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def save_reward_head(params: dict, directory: str | os.PathLike) -> Path:
    """Writes params["reward_head"] as `directory/reward_head.safetensors` (kernel [D], bias
    []); on multi-host jobs every process calls this and process 0 writes."""
    path = Path(directory) / REWARD_HEAD_FILE
    head = {name: _host(value).astype(np.float32) for name, value in params["reward_head"].items()}
    if jax.process_index() == 0:
        safetensors.numpy.save_file(head, str(path))
    return path


def load_reward_model(
    export_dir: str | os.PathLike, mesh: Mesh | None = None
) -> tuple[ModelConfig, dict]:
    """(config, params) of a reward model exported by a `reward_model` stage.

    The decoder is the Hugging Face checkpoint in `export_dir` (sharded over `mesh` when given),
    the head `export_dir/reward_head.safetensors` (replicated over `mesh`).

    Raises:
      FileNotFoundError: no checkpoint or no reward head file in `export_dir`.
      ValueError: the head's shapes do not match the decoder's hidden size.
    """
    export_dir = Path(export_dir)
    head_path = export_dir / REWARD_HEAD_FILE
    if not head_path.is_file():
        raise FileNotFoundError(
            f"{head_path} not found: {export_dir} is not a reward model "
            f"export (a reward_model stage writes it)"
        )
    config, decoder = models.load_hf_checkpoint(export_dir, mesh=mesh)
    head = safetensors.numpy.load_file(str(head_path))
    expected = {"kernel": (config.hidden_size,), "bias": ()}
    got = {name: tuple(value.shape) for name, value in head.items()}
    if got != expected:
        raise ValueError(
            f"{head_path}: tensors {got}, expected {expected} for hidden_size {config.hidden_size}"
        )
    if mesh is None:
        head = {name: jnp.asarray(value, jnp.float32) for name, value in head.items()}
    else:
        head = jax.device_put(
            {name: value.astype(np.float32) for name, value in head.items()},
            NamedSharding(mesh, PartitionSpec()),
        )
    return config, {"model": decoder, "reward_head": head}


REWARD_MODEL_PARAMS = ParamsHooks(
    build=_build_params,
    shardings=_shardings,
    decoder=lambda params: params["model"],
    save_extra=lambda config, params, directory: save_reward_head(params, directory),
)


def reward_scores(
    model: ModelContext,
    params: dict,
    tokens: jax.Array,
    positions: jax.Array,
    segment_ids: jax.Array,
    last_index: jax.Array,
) -> jax.Array:
    """Scalar rewards float32 [B] for sequences [B, T] ending at `last_index` [B]."""
    hidden = model.hidden(
        params["model"], {"tokens": tokens, "positions": positions, "segment_ids": segment_ids}
    )
    last = jnp.take_along_axis(hidden, last_index[:, None, None].astype(jnp.int32), axis=1)[:, 0]
    head = params["reward_head"]
    return last.astype(jnp.float32) @ head["kernel"] + head["bias"]


@register_objective("reward_model", params=REWARD_MODEL_PARAMS)
def reward_model_loss(params, batch, rng, *, model: ModelContext, config):
    """Bradley–Terry loss; both sides scored in one [2B, T] forward pass."""
    del rng, config
    both = stacked_pair(batch, REWARD_FIELDS)
    rewards = reward_scores(
        model, params, both["tokens"], both["positions"], both["segment_ids"], both["last_index"]
    )
    chosen, rejected = jnp.split(rewards, len(PAIR_SIDES))
    pair_mask = batch.get("pair_mask", jnp.ones_like(chosen))
    return bradley_terry_terms(chosen, rejected, pair_mask, batch.get("margin", 0.0))
