"""Logits equal HF transformers' on random tiny checkpoints that transformers itself saved."""

import copy

import jax.numpy as jnp
import numpy as np
import pytest

from reasonrl import models
from tests.helpers import HF_TINY_CONFIGS, hf_logits

KINDS = sorted(HF_TINY_CONFIGS)
FP32_TOL = 1e-4


def _tokens(vocab, shape, seed=0):
    return np.random.RandomState(seed).randint(0, vocab, shape).astype(np.int32)


@pytest.fixture(scope="module")
def loaded(hf_checkpoints):
    return {kind: models.load_hf_checkpoint(path) for kind, (_, path) in hf_checkpoints.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_logits_match_transformers_fp32(kind, hf_checkpoints, loaded):
    hf_model, _ = hf_checkpoints[kind]
    config, params = loaded[kind]
    tokens = _tokens(config.vocab_size, (3, 40))
    ours = np.asarray(models.forward(config, params, tokens))
    ref = hf_logits(hf_model, tokens)
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    assert np.abs(ref).max() > 1.0, "logits too small for the comparison to mean anything"
    np.testing.assert_allclose(ours, ref, atol=FP32_TOL, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_blockwise_attention_matches_transformers_fp32(kind, hf_checkpoints, loaded):
    """Tiles of 8 queries x 16 keys over 40 tokens: the online softmax across several tiles,
    skipped tiles above the diagonal and a ragged last tile, against HF."""
    hf_model, _ = hf_checkpoints[kind]
    config, params = loaded[kind]
    config = config.replace(attention="blockwise", attention_q_block=8, attention_kv_block=16)
    tokens = _tokens(config.vocab_size, (3, 40))
    ours = np.asarray(models.forward(config, params, tokens))
    np.testing.assert_allclose(ours, hf_logits(hf_model, tokens), atol=FP32_TOL, rtol=0)


@pytest.mark.parametrize("kind", ["llama", "qwen3"])
def test_explicit_positions_match_transformers(kind, hf_checkpoints, loaded):
    """Positions far from 0..T-1 exercise RoPE (and llama3 scaling) at large angles."""
    hf_model, _ = hf_checkpoints[kind]
    config, params = loaded[kind]
    tokens = _tokens(config.vocab_size, (2, 16), seed=1)
    positions = np.stack([np.arange(16) + 37, np.arange(16) * 7 + 3]).astype(np.int32)
    ours = np.asarray(models.forward(config, params, tokens, positions=positions))
    np.testing.assert_allclose(ours, hf_logits(hf_model, tokens, positions), atol=FP32_TOL, rtol=0)


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_packed_segments_match_separate_documents(kind, hf_checkpoints, loaded):
    """A row packing 3 documents (+ padding) gives each document HF's logits for it alone."""
    hf_model, _ = hf_checkpoints[kind]
    config, params = loaded[kind]
    lengths = [7, 12, 5]
    docs = [_tokens(config.vocab_size, (1, n), seed=10 + i) for i, n in enumerate(lengths)]
    pad = 4
    row = np.concatenate(docs + [np.zeros((1, pad), np.int32)], axis=1)
    segments = np.concatenate(
        [np.full((1, n), i + 1) for i, n in enumerate(lengths)] + [np.zeros((1, pad))], axis=1
    ).astype(np.int32)
    positions = np.concatenate([np.arange(n) for n in lengths] + [np.zeros(pad)])[None]
    ours = np.asarray(
        models.forward(
            config, params, row, positions=positions.astype(np.int32), segment_ids=segments
        )
    )
    start = 0
    for doc in docs:
        n = doc.shape[1]
        np.testing.assert_allclose(
            ours[:, start : start + n], hf_logits(hf_model, doc), atol=FP32_TOL, rtol=0
        )
        start += n
    assert np.isfinite(ours).all(), "padding rows must not produce NaN"


def test_segment_ids_really_isolate_documents(loaded):
    """Changing document 1 leaves document 2's logits unchanged (and vice versa it does not)."""
    config, params = loaded["qwen3"]
    row = _tokens(config.vocab_size, (1, 20), seed=3)
    other = row.copy()
    other[0, :8] = (other[0, :8] + 1) % config.vocab_size
    segments = np.array([[1] * 8 + [2] * 12], np.int32)
    positions = np.array([list(range(8)) + list(range(12))], np.int32)
    a = np.asarray(models.forward(config, params, row, positions=positions, segment_ids=segments))
    b = np.asarray(models.forward(config, params, other, positions=positions, segment_ids=segments))
    np.testing.assert_array_equal(a[:, 8:], b[:, 8:])
    assert np.abs(a[:, :8] - b[:, :8]).max() > 1e-3
    # Without segment ids the second document sees the first: the test above is not vacuous.
    c = np.asarray(models.forward(config, params, row))
    d = np.asarray(models.forward(config, params, other))
    assert np.abs(c[:, 8:] - d[:, 8:]).max() > 1e-3


BF16_TOL_FRACTION = 0.03  # bf16 error stays within 3% of the fp32 logit range


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_bf16_compute_close_to_fp32_and_to_transformers_bf16(kind, hf_checkpoints, loaded):
    """bf16 compute: max error vs the fp32 logits ≤ 3% of their range, and no worse than 2x
    the error of transformers running the same checkpoint in bf16."""
    import torch

    hf_model, path = hf_checkpoints[kind]
    config, params = loaded[kind]
    tokens = _tokens(config.vocab_size, (2, 32), seed=4)
    ref = hf_logits(hf_model, tokens)
    bf16_config = config.replace(dtype="bfloat16")
    ours = np.asarray(models.forward(bf16_config, params, tokens))
    # A copy: casting the session-wide model in place would round its weights for later tests.
    hf_bf16 = hf_logits(copy.deepcopy(hf_model).to(torch.bfloat16), tokens)
    our_err, hf_err = np.abs(ours - ref).max(), np.abs(hf_bf16 - ref).max()
    assert our_err <= BF16_TOL_FRACTION * np.ptp(ref), (our_err, np.ptp(ref))
    assert our_err <= 2 * hf_err + 1e-3, (our_err, hf_err)
    assert our_err > 0, "bf16 compute was not actually used"


def test_bf16_params_load(hf_checkpoints):
    _, path = hf_checkpoints["qwen3"]
    config, params = models.load_hf_checkpoint(path, dtype=jnp.bfloat16)
    assert config.param_dtype == "bfloat16"
    assert all(leaf.dtype == jnp.bfloat16 for leaf in __import__("jax").tree.leaves(params))
