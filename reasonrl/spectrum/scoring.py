"""Per-token scores of whole sequences under a model, for the spectrum evals.

`score_sequences` runs a jitted forward with explicit shardings (rows split over the mesh's
batch axes, as `models.make_forward`) and reduces the logits to per-token statistics chunk by
chunk over the sequence, so [B, T, V] logits never exist at once:

    target_logprobs  float32 [N, T]     log p(targets[t] | tokens[:t+1])
    argmax_match     bool    [N, T]     targets[t] is the argmax
    top_logprobs     float32 [N, T, K]  the K largest log-probabilities at t
    top_is_target    bool    [N, T, K]  which of them is targets[t]

Sequences are padded to a bucketed length and cut into fixed batches, so a run compiles once
per length bucket.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from reasonrl import models
from reasonrl.models.config import ModelConfig
from reasonrl.models.layers import ActivationSharding
from reasonrl.parallel import jit_on_mesh
from reasonrl.parallel.rules import DEFAULT_RULES, batch_sharding, batch_split_count
from reasonrl.sampling import bucket_length

TOP_K = 100  # >= 1 / calibration threshold: holds every token with probability > 0.01


class SequenceScores(NamedTuple):
    """Per-token statistics of N sequences (module docstring); rows follow the input order,
    positions past a sequence's end are zero."""

    target_logprobs: np.ndarray
    argmax_match: np.ndarray
    top_logprobs: np.ndarray
    top_is_target: np.ndarray


@functools.lru_cache(maxsize=16)
def make_sequence_scorer(config: ModelConfig, mesh: Mesh | None, top_k: int, chunk_size: int):
    """A jitted `(params, tokens, targets) -> (target_logprobs, argmax_match, top_logprobs,
    top_ids)` over int32 [B, T] rows (T a multiple of `chunk_size`)."""
    sharding = None if mesh is None else ActivationSharding(mesh, DEFAULT_RULES)
    rows = None if mesh is None else batch_sharding(mesh)
    in_shardings = None if mesh is None else (models.param_shardings(config, mesh), rows, rows)
    k = min(top_k, config.vocab_size)

    def score(params, tokens, targets):
        positions = models.default_positions(tokens)
        hidden, _ = models.hidden_states(
            config, params, tokens, positions, jnp.ones_like(tokens), sharding=sharding
        )
        batch, length, width = hidden.shape
        chunks = length // chunk_size

        def one_chunk(args):
            h, t = args  # [B, C, D], [B, C]
            logits = models.logits_from_hidden(config, params, h, sharding=sharding)
            logprobs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
            target = jnp.take_along_axis(logprobs, t[..., None], axis=-1)[..., 0]
            match = jnp.argmax(logprobs, axis=-1) == t
            top, ids = jax.lax.top_k(logprobs, k)
            return target, match, top, ids

        hidden = hidden.reshape(batch, chunks, chunk_size, width).swapaxes(0, 1)
        targets = targets.reshape(batch, chunks, chunk_size).swapaxes(0, 1)
        out = jax.lax.map(one_chunk, (hidden, targets))
        return jax.tree.map(lambda x: x.swapaxes(0, 1).reshape(batch, length, *x.shape[3:]), out)

    return jit_on_mesh(score, mesh, in_shardings=in_shardings, out_shardings=rows)


def score_sequences(
    config: ModelConfig,
    params,
    sequences: Sequence[Sequence[int]],
    *,
    batch_size: int = 16,
    top_k: int = TOP_K,
    chunk_size: int = 128,
    pad_id: int = 0,
) -> SequenceScores:
    """Scores every token of every sequence (each at most the model's context long)."""
    mesh = models.mesh_of(params)
    splits = 1 if mesh is None else batch_split_count(mesh)
    batch_size = -(-batch_size // splits) * splits
    longest = max(len(s) for s in sequences)
    if longest > config.max_position_embeddings:
        raise ValueError(
            f"a sequence of {longest} tokens exceeds the model's context "
            f"({config.max_position_embeddings})"
        )
    chunk = min(chunk_size, bucket_length(longest))
    length = -(-bucket_length(longest) // chunk) * chunk
    scorer = make_sequence_scorer(config, mesh, top_k, chunk)
    k = min(top_k, config.vocab_size)
    outputs = [[], [], [], []]
    for start in range(0, len(sequences), batch_size):
        group = sequences[start : start + batch_size]
        tokens = np.full((batch_size, length), pad_id, np.int32)
        targets = np.full((batch_size, length), pad_id, np.int32)
        for row, sequence in enumerate(group):
            tokens[row, : len(sequence)] = sequence
            targets[row, : len(sequence) - 1] = sequence[1:]
        target, match, top, ids = jax.device_get(scorer(params, tokens, targets))
        is_target = ids == targets[..., None]
        for out, value in zip(outputs, (target, match, top, is_target)):
            out.append(value[: len(group)])
    scores = [np.concatenate(out)[: len(sequences)] for out in outputs]
    for row, sequence in enumerate(sequences):  # zero past each sequence's last target
        for value in scores:
            value[row, len(sequence) - 1 :] = 0
    assert scores[2].shape[-1] == k
    return SequenceScores(*scores)
