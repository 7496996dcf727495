"""RLP's pure math against NumPy references of the paper's formulas (arXiv 2510.01265 eq. 5-8,
Alg. 1): information gain, the G/(G−1) leave-one-out advantage, the per-thought normalised
clipped surrogate and its masks and stop-gradients, the EMA teacher (lazy init, mix, no
gradient), the position sampler and the option checks."""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from reasonrl.objectives import metrics as metrics_lib
from reasonrl.objectives.registry import ObjectiveOptionError
from reasonrl.objectives.rlp import (
    RlpOptions,
    ema_update,
    information_gain,
    init_ema_teacher,
    rlp_advantages,
    rlp_loss_terms,
    sample_positions,
    update_ema_teacher,
)
from reasonrl.rl.advantages import rloo_advantages


def _numpy_gain(reasoned, baseline, mask):
    out = np.zeros(reasoned.shape[0])
    for i in range(reasoned.shape[0]):
        for k in range(reasoned.shape[1]):
            if mask[i, k]:
                out[i] += float(reasoned[i, k]) - float(baseline[i, k])
    return out


def _numpy_advantages(rewards, group):
    out = np.zeros(len(rewards))
    for start in range(0, len(rewards), group):
        r = rewards[start : start + group].astype(np.float64)
        for i in range(group):
            out[start + i] = r[i] - np.mean(np.delete(r, i))  # leave-one-out baseline
    return out


def _numpy_loss(lp, old, adv, mask, eps_low, eps_high, kl_coef=0.0, ref=None):
    """Eq. 8: (1/#thoughts) Σ_i −(1/|c_i|) Σ_u min(ρA, clip(ρ)A) (+ β·k3), float64 loops."""
    per_thought = []
    for i in range(mask.shape[0]):
        losses = []
        for u in range(mask.shape[1]):
            if not mask[i, u]:
                continue
            ratio = np.exp(np.clip(float(lp[i, u]) - float(old[i, u]), -20, 20))
            clipped = min(max(ratio, 1 - eps_low), 1 + eps_high)
            loss = -min(ratio * adv[i], clipped * adv[i])
            if kl_coef:
                log_r = float(ref[i, u]) - float(lp[i, u])
                loss += kl_coef * (np.exp(log_r) - log_r - 1)
            losses.append(loss)
        if losses:
            per_thought.append(sum(losses) / len(losses))
    return sum(per_thought) / len(per_thought), len(per_thought)


def _numpy_gradient(lp, old, adv, mask, eps_low, eps_high):
    """d loss / d log π_θ: −A·ρ/(|c_i|·N) where the clip does not bind, else 0; 0 off-mask."""
    lengths = mask.sum(1, keepdims=True)
    thoughts = (lengths > 0).sum()
    ratio = np.exp(np.clip(lp - old, -20, 20))
    a = adv[:, None]
    flat = ((a > 0) & (ratio > 1 + eps_high)) | ((a < 0) & (ratio < 1 - eps_low))
    return np.where((mask > 0) & ~flat, -a * ratio, 0.0) / np.maximum(lengths, 1) / thoughts


def _thought_batch(seed=0, groups=3, group=4, length=12):
    """Rows = one context + thought + scored token each: prompt (cols 0-2), thought (random
    length, one row empty), the scored token right after it; junk outside the thought."""
    rng = np.random.RandomState(seed)
    n = groups * group
    lp = (-rng.rand(n, length) * 3).astype(np.float32)
    old = (lp + rng.randn(n, length) * 0.3).astype(np.float32)
    mask = np.zeros((n, length), np.float32)
    for i in range(n):
        end = 3 + rng.randint(1, length - 4)
        mask[i, 3:end] = 1
    mask[5] = 0  # a zero-length thought
    old = np.where(mask > 0, old, -1e4).astype(np.float32)  # junk: exp would overflow
    rewards = rng.randn(n).astype(np.float32)
    return lp, old, rewards, mask, group


def test_information_gain_matches_numpy():
    rng = np.random.RandomState(0)
    reasoned = (-rng.rand(7, 3) * 4).astype(np.float32)
    baseline = (-rng.rand(7, 3) * 4).astype(np.float32)
    mask = rng.rand(7, 3) > 0.4
    mask[0] = False  # a window with nothing to score: r = 0
    reasoned[~mask] = np.nan  # masked-out window tokens are never read
    baseline[~mask] = -np.inf
    got = np.asarray(information_gain(reasoned, baseline, mask))
    np.testing.assert_allclose(got, _numpy_gain(reasoned, baseline, mask), rtol=1e-6, atol=1e-6)
    assert got[0] == 0.0 and np.all(np.isfinite(got))
    # default window k = 1: the plain log-prob difference
    one = information_gain(reasoned[:, :1], baseline[:, :1], np.ones((7, 1), bool))
    np.testing.assert_allclose(one[1:], (reasoned - baseline)[1:, 0], rtol=1e-6)


def test_information_gain_is_stop_gradient():
    rng = np.random.RandomState(1)
    reasoned, baseline = rng.randn(2, 5, 2).astype(np.float32)
    mask = np.ones((5, 2), np.float32)
    grads = jax.grad(lambda a, b: jnp.sum(information_gain(a, b, mask) ** 2), argnums=(0, 1))(
        reasoned, baseline
    )
    assert all(np.all(np.asarray(g) == 0) for g in grads)


@pytest.mark.parametrize("group", [2, 4, 16])
def test_advantages_match_numpy(group):
    rewards = np.random.RandomState(group).randn(3 * group).astype(np.float32)
    rewards[:group] = 0.7  # a group of equal rewards: exactly 0
    got = np.asarray(rlp_advantages(rewards, group))
    expected = _numpy_advantages(rewards, group)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.all(got[:group] == 0)
    # the G/(G−1) factor: eq. 7's form, and the shared rloo estimator
    for start in range(0, len(rewards), group):
        r = rewards[start : start + group].astype(np.float64)
        np.testing.assert_allclose(
            got[start : start + group], group / (group - 1) * (r - r.mean()), atol=1e-5
        )
    np.testing.assert_array_equal(got, np.asarray(rloo_advantages(rewards, group)))
    grad = jax.grad(lambda r: jnp.sum(rlp_advantages(r, group) * jnp.arange(3 * group)))(rewards)
    assert np.all(np.asarray(grad) == 0)


def test_advantages_group_of_one_raises():
    with pytest.raises(ObjectiveOptionError) as error:
        rlp_advantages(np.ones(4, np.float32), 1)
    assert error.value.option == "group_size"


@pytest.mark.parametrize(
    "eps_low, eps_high, kl_coef", [(0.2, 0.2, 0.0), (0.1, 0.28, 0.0), (0.2, 0.2, 0.05)]
)
def test_loss_matches_numpy(eps_low, eps_high, kl_coef):
    lp, old, rewards, mask, group = _thought_batch()
    ref = (lp + np.random.RandomState(9).randn(*lp.shape) * 0.4).astype(np.float32)
    adv = np.asarray(rlp_advantages(rewards, group))
    opts = RlpOptions(
        group_size=group, clip_eps_low=eps_low, clip_eps_high=eps_high, kl_coef=kl_coef
    )
    loss_sum, denominator, _ = rlp_loss_terms(
        lp, old, adv, mask, opts, ref_logprobs=ref if kl_coef else None
    )
    expected, thoughts = _numpy_loss(lp, old, adv, mask, eps_low, eps_high, kl_coef, ref)
    assert float(denominator) == thoughts == mask.shape[0] - 1  # the empty thought is not counted
    np.testing.assert_allclose(float(loss_sum / denominator), expected, rtol=1e-5, atol=1e-6)


def test_loss_gradient_only_on_thought_tokens():
    lp, old, rewards, mask, group = _thought_batch(seed=2)
    adv = np.asarray(rlp_advantages(rewards, group))
    opts = RlpOptions(group_size=group, clip_eps_low=0.2, clip_eps_high=0.28)

    def loss(logprobs):
        loss_sum, denominator, _ = rlp_loss_terms(logprobs, old, adv, mask, opts)
        return loss_sum / denominator

    grad = np.asarray(jax.grad(loss)(lp))
    assert np.all(np.isfinite(grad))
    assert np.all(grad[mask == 0] == 0)  # context, scored token, padding, the empty thought
    np.testing.assert_allclose(
        grad, _numpy_gradient(lp, old, adv, mask, 0.2, 0.28), rtol=1e-5, atol=1e-7
    )
    assert np.count_nonzero(grad) > 0


def test_no_gradient_through_reward():
    """The end-to-end path reward -> advantage -> loss carries no gradient into the scorers."""
    lp, old, _, mask, group = _thought_batch(seed=3)
    rng = np.random.RandomState(4)
    reasoned = (-rng.rand(mask.shape[0], 1) * 3).astype(np.float32)
    baseline = (-rng.rand(mask.shape[0], 1) * 3).astype(np.float32)
    opts = RlpOptions(group_size=group)

    def loss(reasoned, baseline, logprobs):
        r = information_gain(reasoned, baseline, jnp.ones_like(reasoned))
        loss_sum, denominator, _ = rlp_loss_terms(
            logprobs, old, rlp_advantages(r, group), mask, opts
        )
        return loss_sum / denominator

    g_reasoned, g_baseline, g_lp = jax.grad(loss, argnums=(0, 1, 2))(reasoned, baseline, lp)
    assert np.all(np.asarray(g_reasoned) == 0) and np.all(np.asarray(g_baseline) == 0)
    assert np.count_nonzero(np.asarray(g_lp)) > 0


def test_metrics_match_numpy():
    lp, old, rewards, mask, group = _thought_batch(seed=5)
    adv = np.asarray(rlp_advantages(rewards, group))
    opts = RlpOptions(group_size=group)
    _, _, metrics = rlp_loss_terms(lp, old, adv, mask, opts)
    got = metrics_lib.compute(metrics)
    thoughts = mask.sum(1) > 0
    on = mask > 0
    ratio = np.exp((lp - old)[on])
    a = np.broadcast_to(adv[:, None], mask.shape)[on]
    expected = {
        "thought_length": mask.sum() / thoughts.sum(),
        "clip_fraction_low": np.mean((a < 0) & (ratio < 0.8)),
        "clip_fraction_high": np.mean((a > 0) & (ratio > 1.2)),
        "ratio_min": ratio.min(),
        "ratio_max": ratio.max(),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(float(got[name]), value, rtol=1e-5, err_msg=name)


def test_zero_length_thoughts_contribute_nothing():
    lp, old, rewards, mask, group = _thought_batch(seed=6)
    adv = np.asarray(rlp_advantages(rewards, group)).copy()
    adv[5] = np.nan  # the empty thought's advantage and log-probs are never read
    lp_junk = lp.copy()
    lp_junk[5] = np.nan
    opts = RlpOptions(group_size=group)
    full = rlp_loss_terms(lp_junk, old, adv, mask, opts)
    keep = np.arange(mask.shape[0]) != 5
    dropped = rlp_loss_terms(lp[keep], old[keep], adv[keep], mask[keep], opts)
    np.testing.assert_allclose(float(full[0]), float(dropped[0]), rtol=1e-6)
    assert float(full[1]) == float(dropped[1])
    # a batch of empty thoughts only: loss 0 over 0 thoughts, finite gradient
    empty = np.zeros_like(mask)
    loss_sum, denominator, metrics = rlp_loss_terms(lp, old, adv, empty, opts)
    assert float(loss_sum) == 0.0 and float(denominator) == 0.0
    got = metrics_lib.compute(metrics)
    assert np.isfinite(float(got["pg_loss"]))
    grad = jax.grad(lambda x: rlp_loss_terms(x, old, adv, empty, opts)[0])(lp_junk)
    assert np.all(np.asarray(grad) == 0)


def test_accumulation_is_exact():
    """Summing loss_sum and denominator over micro-batches gives the full batch's mean."""
    lp, old, rewards, mask, group = _thought_batch(seed=7)
    adv = np.asarray(rlp_advantages(rewards, group))
    opts = RlpOptions(group_size=group)
    full_sum, full_den, _ = rlp_loss_terms(lp, old, adv, mask, opts)
    parts = [
        rlp_loss_terms(lp[s], old[s], adv[s], mask[s], opts) for s in np.split(np.arange(12), 3)
    ]
    total = sum(float(p[0]) for p in parts) / sum(float(p[1]) for p in parts)
    np.testing.assert_allclose(total, float(full_sum / full_den), rtol=1e-6)


def test_kl_needs_reference():
    lp, old, rewards, mask, group = _thought_batch()
    with pytest.raises(KeyError):
        rlp_loss_terms(lp, old, rewards, mask, RlpOptions(group_size=group, kl_coef=0.1))


def test_ema_teacher_lazy_init_then_mix():
    """φ = θ_0 when the state is created (the paper's lazy init at the first batch), then
    φ ← τφ + (1−τ)θ after each step, in float32, with no gradient into either tree."""
    rng = np.random.RandomState(0)
    theta1 = {"w": rng.randn(3, 4).astype(np.float32), "b": [rng.randn(2).astype(np.float32)]}
    theta2 = jax.tree.map(lambda x: x + 1.5, theta1)
    config = ml_collections.ConfigDict({"ema_decay": 0.9})
    tau = 0.9
    extra = init_ema_teacher(theta1, config)
    jax.tree.map(
        lambda e, p: np.testing.assert_array_equal(np.asarray(e), p), extra["ema_params"], theta1
    )
    extra = jax.jit(lambda e, p: update_ema_teacher(e, p, config))(extra, theta2)
    jax.tree.map(
        lambda e, a, b: np.testing.assert_allclose(
            np.asarray(e), tau * a.astype(np.float64) + (1 - tau) * b, rtol=1e-6, atol=1e-6
        ),
        extra["ema_params"],
        theta1,
        theta2,
    )
    # a traced τ (1 − τ in float32) agrees with the closed-over Python float to an ulp
    traced = jax.jit(ema_update)(theta1, theta2, tau)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        traced,
        extra["ema_params"],
    )
    grad = jax.grad(lambda e, p: jnp.sum(ema_update(e, p, tau)["w"]), argnums=(0, 1))(
        theta1, theta2
    )
    assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(grad))


def test_ema_keeps_ema_dtype():
    ema = {"w": jnp.zeros(3, jnp.float32)}
    params = {"w": jnp.asarray([1.0, 2.0, 3.0], jnp.bfloat16)}
    new = ema_update(ema, params, 0.999)
    assert new["w"].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(new["w"]), 0.001 * np.arange(1, 4), rtol=1e-5)


def _check_positions(positions, valid, min_context, num_positions):
    for b in range(valid.shape[0]):
        eligible = {t for t in range(valid.shape[1]) if valid[b, t] and t >= min_context}
        row = list(positions[b])
        if not eligible:
            assert row == [-1] * num_positions
            continue
        assert all(t in eligible for t in row)  # ≥ min_context, on a valid token
        if len(eligible) >= num_positions:
            assert len(set(row)) == num_positions  # without replacement
        else:
            assert set(row) == eligible  # each once, the rest with replacement


@pytest.mark.parametrize("num_positions", [1, 3, 8, 40])
def test_sample_positions(num_positions):
    rng = np.random.RandomState(num_positions)
    valid = rng.rand(6, 20) > 0.4
    valid[1] = False  # nothing to score
    valid[2, :10] = True
    valid[2, 10:] = False  # valid only before min_context
    valid[3] = False
    valid[3, 15] = True  # a single eligible position
    min_context = 10
    key = jax.random.PRNGKey(0)
    positions = np.asarray(sample_positions(valid, num_positions, min_context, key))
    assert positions.shape == (6, num_positions) and positions.dtype == np.int32
    _check_positions(positions, valid, min_context, num_positions)
    assert np.all(positions[1:3] == -1)
    assert np.all(positions[3] == 15)
    again = jax.jit(sample_positions, static_argnums=(1, 2))(valid, num_positions, min_context, key)
    np.testing.assert_array_equal(positions, np.asarray(again))  # deterministic given rng


def test_sample_positions_is_uniform():
    valid = np.zeros((1, 12), bool)
    valid[0, [2, 5, 6, 9, 11]] = True
    draws = np.concatenate(
        [
            np.asarray(sample_positions(valid, 2, 5, jax.random.PRNGKey(seed)))[0]
            for seed in range(400)
        ]
    )
    assert set(draws) == {5, 6, 9, 11}
    counts = np.array([np.sum(draws == t) for t in (5, 6, 9, 11)])
    assert np.all(np.abs(counts - 200) < 60)  # 800 draws over 4 positions, ~6 sd margin
    keys = [jax.random.PRNGKey(s) for s in range(5)]
    assert len({tuple(np.asarray(sample_positions(valid, 2, 5, k))[0]) for k in keys}) > 1


def test_options_validation():
    opts = RlpOptions()
    assert (opts.group_size, opts.ema_decay, opts.temperature, opts.kl_coef) == (
        16,
        0.999,
        0.7,
        0.0,
    )
    assert opts.score_tokens == 1 and opts.max_thought_tokens == 2048
    pg = opts.policy_gradient_options()
    assert pg.loss_aggregation == "seq_mean_token_mean" and pg.importance_ratio == "token"
    for option, value in [
        ("group_size", 1),
        ("num_positions", 0),
        ("min_context", -1),
        ("max_thought_tokens", 0),
        ("ema_decay", 0.0),
        ("ema_decay", 1.0),
        ("clip_eps_low", 1.0),
        ("clip_eps_high", -0.1),
        ("kl_coef", -1e-4),
        ("temperature", 0.0),
        ("score_tokens", 0),
        ("kl_estimator", "k2"),
        ("thought_close", ""),
        ("num_minibatches", 0),
        ("update_epochs", 0),
        ("logits_chunk_size", 0),
    ]:
        with pytest.raises(ObjectiveOptionError) as error:
            dataclasses.replace(opts, **{option: value})
        assert error.value.option == option
