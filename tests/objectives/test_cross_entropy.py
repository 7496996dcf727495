"""next_token / sft losses and chunked log-probs against independent NumPy references."""

import jax
import ml_collections
import numpy as np
import pytest

from reasonrl import models
from reasonrl.objectives import ModelContext, get_objective, token_statistics

CONFIG = models.get_preset(
    "tiny-llama",
    vocab_size=97,
    hidden_size=32,
    intermediate_size=64,
    num_heads=4,
    num_kv_heads=2,
    head_dim=8,
)


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.fixture(scope="module")
def setup():
    params = models.init_params(CONFIG, jax.random.key(0))
    params = jax.tree.map(lambda p: p * 8 if p.ndim > 1 else p, params)  # sharper logits
    rng = np.random.RandomState(0)
    tokens = rng.randint(0, CONFIG.vocab_size, (3, 21)).astype(np.int32)
    batch = dict(
        tokens=tokens,
        targets=rng.randint(0, CONFIG.vocab_size, (3, 21)).astype(np.int32),
        loss_mask=(rng.rand(3, 21) > 0.4).astype(np.float32),
        positions=np.broadcast_to(np.arange(21), (3, 21)).astype(np.int32),
        segment_ids=np.ones((3, 21), np.int32),
    )
    logits = np.asarray(models.forward(CONFIG, params, tokens), np.float64)
    return params, batch, logits


@pytest.mark.parametrize("chunk_size", [4, 7, 21, 64])
def test_token_statistics_match_full_logits(setup, chunk_size):
    params, batch, logits = setup
    hidden, _ = models.hidden_states(
        CONFIG, params, batch["tokens"], batch["positions"], batch["segment_ids"]
    )
    stats = token_statistics(
        CONFIG, params, hidden, batch["targets"], chunk_size=chunk_size, entropy=True
    )
    logp = _log_softmax(logits)
    expected = np.take_along_axis(logp, batch["targets"][..., None], -1)[..., 0]
    np.testing.assert_allclose(stats.logprobs, expected, atol=1e-5)
    np.testing.assert_allclose(stats.entropy, -(np.exp(logp) * logp).sum(-1), atol=1e-5)
    lse = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    np.testing.assert_allclose(stats.logsumexp, lse, atol=1e-4)
    argmax = (logits.argmax(-1) == batch["targets"]).astype(np.float32)
    np.testing.assert_array_equal(stats.argmax_match, argmax)


@pytest.mark.parametrize("z_loss_coef", [0.0, 1e-2])
def test_next_token_loss_matches_numpy(setup, z_loss_coef):
    params, batch, logits = setup
    objective = get_objective("next_token").fn
    config = ml_collections.ConfigDict(
        dict(z_loss_coef=z_loss_coef, logits_chunk_size=8, report_entropy=True)
    )
    loss_sum, denominator, metrics = objective(
        params, batch, jax.random.key(0), model=ModelContext(CONFIG), config=config
    )
    logp = _log_softmax(logits)
    target_logp = np.take_along_axis(logp, batch["targets"][..., None], -1)[..., 0]
    lse = np.log(np.exp(logits).sum(-1))
    mask = batch["loss_mask"]
    expected = -(target_logp * mask).sum() + z_loss_coef * (lse**2 * mask).sum()
    assert float(denominator) == mask.sum()
    np.testing.assert_allclose(float(loss_sum), expected, rtol=1e-5)
    np.testing.assert_allclose(
        float(metrics["nll"].compute()), -(target_logp * mask).sum() / mask.sum(), rtol=1e-5
    )
    entropy = -(np.exp(logp) * logp).sum(-1)
    np.testing.assert_allclose(
        float(metrics["entropy"].compute()), (entropy * mask).sum() / mask.sum(), rtol=1e-5
    )


def test_masked_positions_do_not_matter_and_get_no_gradient(setup):
    """Targets under loss_mask == 0 (prompt tokens, padding) change neither loss nor grads."""
    params, batch, _ = setup
    objective = get_objective("sft").fn
    config = ml_collections.ConfigDict(dict(logits_chunk_size=256, report_entropy=False))
    other = dict(batch)
    other["targets"] = np.where(
        batch["loss_mask"] > 0, batch["targets"], (batch["targets"] + 5) % CONFIG.vocab_size
    ).astype(np.int32)

    def loss(p, b):
        return objective(p, b, jax.random.key(0), model=ModelContext(CONFIG), config=config)[0]

    (l1, g1), (l2, g2) = (jax.value_and_grad(loss)(params, b) for b in (batch, other))
    assert float(l1) == float(l2)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), g1, g2)
    # And the unmasked targets do matter (the test is not vacuous).
    moved = dict(batch)
    moved["targets"] = (batch["targets"] + 5) % CONFIG.vocab_size
    assert abs(float(loss(params, moved)) - float(l1)) > 1e-3


def test_chunked_gradient_equals_full_gradient(setup):
    params, batch, _ = setup

    def loss(p, chunk):
        config = ml_collections.ConfigDict(
            dict(z_loss_coef=1e-3, logits_chunk_size=chunk, report_entropy=False)
        )
        return get_objective("next_token").fn(
            p, batch, jax.random.key(0), model=ModelContext(CONFIG), config=config
        )[0]

    g_chunked = jax.grad(loss)(params, 5)
    g_full = jax.grad(loss)(params, 1024)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4), g_chunked, g_full
    )


def test_unknown_objective_lists_registered():
    with pytest.raises(KeyError, match="next_token"):
        get_objective("nope")


@pytest.mark.parametrize("name", ["sft", "spectrum"])
def test_masked_objectives_match_numpy(setup, name):
    """sft and spectrum: Σ_t m_t (−log p(y_t)) over the global count of loss tokens."""
    params, batch, logits = setup
    config = ml_collections.ConfigDict(dict(logits_chunk_size=8, report_entropy=False))
    loss_sum, denominator, metrics = get_objective(name).fn(
        params, batch, jax.random.key(0), model=ModelContext(CONFIG), config=config
    )
    target_logp = np.take_along_axis(_log_softmax(logits), batch["targets"][..., None], -1)[..., 0]
    mask = batch["loss_mask"]
    np.testing.assert_allclose(float(loss_sum), -(target_logp * mask).sum(), rtol=1e-5)
    assert float(denominator) == mask.sum() and float(metrics["tokens"].compute()) == mask.sum()
