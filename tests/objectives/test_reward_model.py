"""reward_model: scores from the last non-pad token, the Bradley–Terry loss against NumPy,
and exact gradient accumulation."""

import jax
import ml_collections
import numpy as np

from reasonrl import models
from reasonrl.objectives import ModelContext, get_objective
from reasonrl.objectives import metrics as metrics_lib
from reasonrl.objectives.reward_model import (
    bradley_terry_terms,
    init_reward_model_params,
    reward_scores,
)
from tests.helpers import assert_accumulation_exact

CONFIG = models.get_preset(
    "tiny-qwen3",
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    head_dim=8,
)
MODEL = ModelContext(CONFIG)
_jit_hidden_states = jax.jit(lambda *args: models.hidden_states(CONFIG, *args))
_jit_scores = jax.jit(lambda params, side: reward_scores(MODEL, params, **side))
CONFIG_DICT = ml_collections.FrozenConfigDict(get_objective("reward_model").defaults)


def _numpy_bradley_terry(chosen, rejected, pair_mask, margin):
    d = np.asarray(chosen, np.float64) - np.asarray(rejected, np.float64) - margin
    return np.log1p(np.exp(-d))[pair_mask > 0].mean()


def test_terms_match_numpy():
    rng = np.random.RandomState(0)
    chosen, rejected, margin = (rng.randn(6).astype(np.float32) * 2 for _ in range(3))
    pair_mask = np.array([1, 0, 1, 1, 1, 1], np.float32)
    loss_sum, pairs, metrics = bradley_terry_terms(chosen, rejected, pair_mask, margin)
    np.testing.assert_allclose(
        float(loss_sum / pairs),
        _numpy_bradley_terry(chosen, rejected, pair_mask, margin),
        rtol=1e-6,
    )
    keep = pair_mask > 0
    got = metrics_lib.compute(metrics)
    np.testing.assert_allclose(float(got["accuracy"]), np.mean(chosen[keep] > rejected[keep]))
    np.testing.assert_allclose(
        float(got["reward_margin"]), (chosen - rejected)[keep].mean(), rtol=1e-5
    )
    np.testing.assert_allclose(float(got["chosen_reward"]), chosen[keep].mean(), rtol=1e-5)
    np.testing.assert_allclose(float(got["rejected_reward"]), rejected[keep].mean(), rtol=1e-5)


def _side(rng, lengths, length=9):
    tokens = rng.randint(1, CONFIG.vocab_size, (len(lengths), length)).astype(np.int32)
    for row, n in enumerate(lengths):
        tokens[row, n:] = 0  # right padding
    return dict(
        tokens=tokens,
        positions=np.broadcast_to(np.arange(length), tokens.shape).astype(np.int32),
        segment_ids=(tokens > 0).astype(np.int32),
        last_index=np.array(lengths, np.int32) - 1,
    )


def _setup():
    params = init_reward_model_params(CONFIG, jax.random.key(0))
    rng = np.random.RandomState(0)
    batch = {
        f"{side}_{k}": v
        for side, lengths in (("chosen", [9, 4, 6, 7]), ("rejected", [5, 9, 3, 7]))
        for k, v in _side(rng, lengths).items()
    }
    return params, batch


def _numpy_scores(params, side):
    hidden, _ = _jit_hidden_states(
        params["model"], side["tokens"], side["positions"], side["segment_ids"]
    )
    last = np.asarray(hidden)[np.arange(len(side["tokens"])), side["last_index"]]
    head = params["reward_head"]
    return last.astype(np.float64) @ np.asarray(head["kernel"]) + float(head["bias"])


def test_scores_read_the_last_non_pad_token():
    params, batch = _setup()
    side = {k[7:]: v for k, v in batch.items() if k.startswith("chosen_")}
    params["reward_head"]["bias"] = np.float32(0.25)
    scores = np.asarray(_jit_scores(params, side))
    np.testing.assert_allclose(scores, _numpy_scores(params, side), rtol=1e-5, atol=1e-6)
    padded = dict(side, tokens=np.where(side["segment_ids"] > 0, side["tokens"], 7))
    np.testing.assert_allclose(_jit_scores(params, padded), scores, rtol=1e-6)
    moved = dict(side, last_index=side["last_index"] - 1)
    assert np.all(np.abs(np.asarray(_jit_scores(params, moved)) - scores) > 1e-6)


def test_objective_matches_numpy_and_trains_head_and_model():
    params, batch = _setup()
    batch["margin"] = np.array([0.0, 0.5, 1.0, 0.0], np.float32)
    batch["pair_mask"] = np.array([1, 1, 1, 0], np.float32)
    loss = lambda p: get_objective("reward_model").fn(
        p,
        batch,
        jax.random.key(0),  # noqa: E731
        model=MODEL,
        config=CONFIG_DICT,
    )
    loss_sum, pairs, _ = jax.jit(loss)(params)
    sides = [
        {k[len(s) + 1 :]: v for k, v in batch.items() if k.startswith(s + "_")}
        for s in ("chosen", "rejected")
    ]
    expected = _numpy_bradley_terry(
        _numpy_scores(params, sides[0]),
        _numpy_scores(params, sides[1]),
        batch["pair_mask"],
        batch["margin"],
    )
    assert float(pairs) == 3
    np.testing.assert_allclose(float(loss_sum / pairs), expected, rtol=1e-5)
    grads = jax.jit(jax.grad(lambda p: loss(p)[0]))(params)
    assert float(np.abs(grads["reward_head"]["kernel"]).max()) > 1e-4
    assert abs(float(grads["reward_head"]["bias"])) < 1e-6  # r_w - r_l: the bias cancels
    assert max(float(np.abs(g).max()) for g in jax.tree.leaves(grads["model"])) > 1e-5


def test_gradient_accumulation_is_exact():
    params, batch = _setup()
    whole, split = assert_accumulation_exact("reward_model", CONFIG_DICT, MODEL, params, batch)
    assert float(whole[1]) == float(split[1]) == 4
