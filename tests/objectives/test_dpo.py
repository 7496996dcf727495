"""dpo: the loss against a NumPy reference, policy == reference gives log 2, reference
log-probs get no gradient, and gradient accumulation is exact."""

import jax
import ml_collections
import numpy as np
import pytest

from reasonrl import models
from reasonrl.objectives import ModelContext, get_objective
from reasonrl.objectives import metrics as metrics_lib
from reasonrl.objectives.dpo import dpo_terms, reference_logprobs, sequence_logprobs
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


def _log_sigmoid(x):
    return -np.log1p(np.exp(-x))


def _numpy_dpo(pc, pr, rc, rr, pair_mask, beta):
    pc, pr, rc, rr = (np.asarray(x, np.float64) for x in (pc, pr, rc, rr))
    h = beta * ((pc - rc) - (pr - rr))
    keep = pair_mask > 0
    return -_log_sigmoid(h[keep]).mean(), h[keep]


def test_terms_match_numpy():
    rng = np.random.RandomState(0)
    pc, pr, rc, rr = (-rng.rand(7).astype(np.float32) * 30 for _ in range(4))
    pair_mask = np.array([1, 1, 0, 1, 1, 1, 0], np.float32)
    loss_sum, pairs, metrics = dpo_terms(pc, pr, rc, rr, pair_mask, beta=0.1)
    expected, h = _numpy_dpo(pc, pr, rc, rr, pair_mask, 0.1)
    assert float(pairs) == 5
    np.testing.assert_allclose(float(loss_sum / pairs), expected, rtol=1e-6)
    got = metrics_lib.compute(metrics)
    keep = pair_mask > 0
    np.testing.assert_allclose(float(got["accuracy"]), np.mean(h > 0), rtol=1e-6)
    np.testing.assert_allclose(float(got["reward_margin"]), h.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(got["chosen_reward"]), 0.1 * (pc - rc)[keep].mean(), rtol=1e-5)
    np.testing.assert_allclose(
        float(got["rejected_reward"]), 0.1 * (pr - rr)[keep].mean(), rtol=1e-5
    )


def test_reference_log_probs_get_no_gradient():
    rng = np.random.RandomState(1)
    pc, pr, rc, rr = (-rng.rand(5).astype(np.float32) * 10 for _ in range(4))
    grads = jax.grad(
        lambda *x: dpo_terms(*x, np.ones(5, np.float32), beta=0.5)[0], argnums=(0, 1, 2, 3)
    )(pc, pr, rc, rr)
    np.testing.assert_array_equal(grads[2], 0.0)
    np.testing.assert_array_equal(grads[3], 0.0)
    assert np.all(grads[0] < 0) and np.all(grads[1] > 0)  # raise chosen, lower rejected


def _sequences(rng, batch, length, prompt_lengths, response_lengths):
    tokens = rng.randint(0, CONFIG.vocab_size, (batch, length)).astype(np.int32)
    mask = np.zeros((batch, length), np.float32)
    for row, (p, r) in enumerate(zip(prompt_lengths, response_lengths)):
        mask[row, p - 1 : p - 1 + r] = 1  # targets[t] = tokens[t + 1]: response targets
    return dict(
        tokens=tokens,
        targets=np.roll(tokens, -1, axis=1),
        loss_mask=mask,
        positions=np.broadcast_to(np.arange(length), tokens.shape).astype(np.int32),
        segment_ids=np.ones_like(tokens),
    )


@pytest.fixture(scope="module")
def setup():
    params = models.init_params(CONFIG, jax.random.key(0))
    params = jax.tree.map(lambda p: p * 4 if p.ndim > 1 else p, params)
    ref_params = models.init_params(CONFIG, jax.random.key(1))
    rng = np.random.RandomState(0)
    chosen = _sequences(rng, 4, 10, [3, 4, 3, 2], [6, 5, 0, 3])  # pair 2: empty chosen
    rejected = _sequences(rng, 4, 10, [3, 4, 3, 2], [4, 2, 5, 7])
    batch = {
        f"{side}_{k}": v
        for side, seqs in (("chosen", chosen), ("rejected", rejected))
        for k, v in seqs.items()
    }
    batch.update(jax.jit(reference_logprobs, static_argnums=0)(MODEL, ref_params, batch))
    return params, ref_params, batch


def _numpy_sequence_logprobs(params, seqs):
    logits = np.asarray(models.forward(CONFIG, params, seqs["tokens"]), np.float64)
    logp = logits - logits.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    target = np.take_along_axis(logp, seqs["targets"][..., None], -1)[..., 0]
    return (target * seqs["loss_mask"]).sum(1)


def _side(batch, side):
    return {k[len(side) + 1 :]: v for k, v in batch.items() if k.startswith(side + "_")}


def _config(**overrides):
    return ml_collections.FrozenConfigDict(
        dict(get_objective("dpo").defaults, logits_chunk_size=4, **overrides)
    )


def test_objective_through_the_model_matches_numpy(setup):
    params, ref_params, batch = setup
    logps = {
        side: _numpy_sequence_logprobs(params, _side(batch, side))
        for side in ("chosen", "rejected")
    }
    ref = {
        side: _numpy_sequence_logprobs(ref_params, _side(batch, side))
        for side in ("chosen", "rejected")
    }
    np.testing.assert_allclose(batch["ref_chosen_logps"], ref["chosen"], rtol=1e-5)
    np.testing.assert_allclose(
        jax.jit(sequence_logprobs, static_argnums=0)(MODEL, params, _side(batch, "rejected")),
        logps["rejected"],
        rtol=1e-5,
    )
    loss_sum, pairs, _ = jax.jit(
        lambda p, b: get_objective("dpo").fn(
            p, b, jax.random.key(0), model=MODEL, config=_config(beta=0.3)
        )
    )(params, batch)
    expected, _ = _numpy_dpo(
        logps["chosen"],
        logps["rejected"],
        ref["chosen"],
        ref["rejected"],
        np.array([1, 1, 0, 1]),
        0.3,
    )
    assert float(pairs) == 3  # the pair with an empty response does not count
    np.testing.assert_allclose(float(loss_sum / pairs), expected, rtol=1e-5)


def test_policy_equal_to_reference_gives_log_2(setup):
    _, ref_params, batch = setup
    loss = jax.jit(
        lambda p, b: get_objective("dpo").fn(
            p, b, jax.random.key(0), model=MODEL, config=_config(beta=0.1)
        )
    )
    loss_sum, pairs, metrics = loss(ref_params, batch)
    assert abs(float(loss_sum / pairs) - np.log(2.0)) < 1e-6
    assert abs(float(metrics["reward_margin"].compute())) < 1e-6


def test_gradient_accumulation_is_exact(setup):
    params, _, batch = setup
    whole, split = assert_accumulation_exact("dpo", _config(), MODEL, params, batch)
    assert float(whole[1]) == float(split[1]) == 3
    assert max(float(abs(g).max()) for g in jax.tree.leaves(whole[3])) > 1e-4
