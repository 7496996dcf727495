"""policy_gradient: the clipped surrogate, KL estimators and loss aggregations against NumPy
references of the paper formulas; stop-gradients; exact gradient accumulation."""

import itertools

import jax
import ml_collections
import numpy as np
import pytest

from reasonrl import models
from reasonrl.objectives import ModelContext, get_objective
from reasonrl.objectives import metrics as metrics_lib
from reasonrl.objectives.policy_gradient import PolicyGradientOptions, policy_gradient_terms
from tests.helpers import assert_accumulation_exact

CONFIG = models.get_preset("tiny-qwen3", vocab_size=64, hidden_size=32, intermediate_size=64,
                           num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8)
AGGREGATIONS = ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"]


def _numpy_loss(lp, old, adv, mask, ref, opts):
    """Per-token loops over the GRPO / DAPO / Dr. GRPO formulas, float64."""
    batch, length = mask.shape
    adv = np.broadcast_to(adv[:, None], mask.shape) if adv.ndim == 1 else adv
    per_sequence, tokens_total, sequences = [], 0.0, 0
    for i in range(batch):
        token_losses = []
        for t in range(length):
            if not mask[i, t]:
                continue
            ratio = np.exp(float(lp[i, t]) - float(old[i, t]))
            a = float(adv[i, t])
            clipped = min(max(ratio, 1 - opts.clip_eps_low), 1 + opts.clip_eps_high)
            loss = -min(ratio * a, clipped * a)
            if opts.dual_clip_c and a < 0:
                loss = min(loss, -a * opts.dual_clip_c)
            if opts.kl_coef:
                log_r = float(ref[i, t]) - float(lp[i, t])
                kl = {"k1": -log_r, "k3": np.exp(log_r) - log_r - 1,
                      "low_var_kl": np.clip(np.exp(np.clip(log_r, -20, 20))
                                            - np.clip(log_r, -20, 20) - 1, -10, 10)
                      }[opts.kl_estimator]
                loss += opts.kl_coef * kl
            token_losses.append(loss)
        if token_losses:
            sequences += 1
            tokens_total += len(token_losses)
            per_sequence.append(token_losses)
    if opts.loss_aggregation == "token_mean":
        return sum(map(sum, per_sequence)) / tokens_total
    if opts.loss_aggregation == "seq_mean_token_mean":
        return sum(sum(s) / len(s) for s in per_sequence) / sequences
    norm = opts.loss_norm_length or length
    return sum(sum(s) / norm for s in per_sequence) / sequences


def _random_inputs(seed=0, batch=6, length=9, per_token_advantage=False):
    rng = np.random.RandomState(seed)
    lp = -rng.rand(batch, length).astype(np.float32) * 3
    old = (lp + rng.randn(batch, length) * 0.3).astype(np.float32)  # ratios on both sides
    shape = (batch, length) if per_token_advantage else (batch,)
    adv = rng.randn(*shape).astype(np.float32)
    mask = (rng.rand(batch, length) > 0.3).astype(np.float32)
    mask[:, :2] = 0  # prompt
    mask[2] = 0  # a zero-length response
    old = np.where(mask > 0, old, -1e4).astype(np.float32)  # junk where unscored: exp overflows
    ref = (lp + rng.randn(batch, length) * 0.5).astype(np.float32)
    ref = np.where(mask > 0, ref, 1e4).astype(np.float32)
    if per_token_advantage:
        adv = np.where(mask > 0, adv, np.nan).astype(np.float32)
    else:
        adv[2] = np.nan  # the zero-length row's advantage is never read
    return lp, old, adv, mask, ref


OPTION_CASES = [
    dict(loss_aggregation=agg, **extra) for agg, extra in itertools.product(AGGREGATIONS, [
        dict(),
        dict(clip_eps_low=0.2, clip_eps_high=0.28, dual_clip_c=3.0),
        dict(kl_coef=0.04, kl_estimator="k3"),
        dict(kl_coef=0.1, kl_estimator="k1", loss_norm_length=16),
        dict(kl_coef=0.1, kl_estimator="low_var_kl", clip_eps_low=0.1, dual_clip_c=1.5),
    ])]


@pytest.mark.parametrize("per_token_advantage", [False, True])
@pytest.mark.parametrize("case", OPTION_CASES,
                         ids=lambda case: "-".join(f"{k}={v}" for k, v in case.items()))
def test_terms_match_numpy(case, per_token_advantage):
    lp, old, adv, mask, ref = _random_inputs(per_token_advantage=per_token_advantage)
    opts = PolicyGradientOptions(**case)
    loss_sum, denominator, metrics = policy_gradient_terms(
        lp, old, adv, mask, opts, ref_logprobs=ref if opts.kl_coef else None)
    expected = _numpy_loss(lp, old, adv, mask, ref, opts)
    assert np.isfinite(float(loss_sum))
    np.testing.assert_allclose(float(loss_sum / denominator), expected, rtol=1e-6, atol=1e-6)
    tokens, sequences = mask.sum(), (mask.sum(1) > 0).sum()
    assert float(denominator) == (tokens if opts.loss_aggregation == "token_mean" else sequences)


def test_health_metrics_match_numpy():
    lp, old, adv, mask, ref = _random_inputs(seed=1)
    sampler = (lp + np.random.RandomState(2).randn(*lp.shape) * 0.1).astype(np.float32)
    entropy = np.random.RandomState(3).rand(*lp.shape).astype(np.float32)
    opts = PolicyGradientOptions(clip_eps_low=0.2, clip_eps_high=0.28, dual_clip_c=1.3,
                                 kl_estimator="k1")
    _, _, metrics = policy_gradient_terms(lp, old, adv, mask, opts, ref_logprobs=ref,
                                          sampler_logprobs=sampler, entropy=entropy)
    got = metrics_lib.compute(metrics)
    on = mask > 0
    ratio, a = np.exp((lp - old)[on]), np.broadcast_to(adv[:, None], mask.shape)[on]
    expected = {
        "clip_fraction_low": np.mean((a < 0) & (ratio < 0.8)),
        "clip_fraction_high": np.mean((a > 0) & (ratio > 1.28)),
        "dual_clip_fraction": np.mean((a < 0) & (ratio > 1.3)),
        "ratio_min": ratio.min(), "ratio_max": ratio.max(),
        "kl": np.mean((lp - ref)[on]),  # reported with kl_coef = 0, not in the loss
        "entropy": entropy[on].mean(),
        "sampler_logprob_abs_diff": np.abs(sampler - lp)[on].mean(),
        "advantage": a.mean(),
        "response_tokens": on.sum() / (on.sum(1) > 0).sum(),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(float(got[name]), value, rtol=1e-5, err_msg=name)
    assert 0 < expected["clip_fraction_low"] and 0 < expected["clip_fraction_high"]


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_zero_length_rows_contribute_nothing(aggregation):
    lp, old, adv, mask, ref = _random_inputs(seed=4)
    opts = PolicyGradientOptions(loss_aggregation=aggregation, kl_coef=0.1)
    keep = mask.sum(1) > 0
    assert not keep.all()

    def loss(lp, old, adv, mask, ref):
        loss_sum, denominator, _ = policy_gradient_terms(lp, old, adv, mask, opts,
                                                         ref_logprobs=ref)
        return loss_sum, denominator

    full = loss(lp, old, adv, mask, ref)
    kept = loss(lp[keep], old[keep], adv[keep], mask[keep], ref[keep])
    np.testing.assert_allclose(np.array(full), np.array(kept), rtol=1e-6)
    grads = jax.grad(lambda x: loss(x, old, adv, mask, ref)[0])(lp)
    assert np.all(np.isfinite(grads))
    np.testing.assert_array_equal(grads[~keep], 0.0)
    np.testing.assert_array_equal(grads[mask == 0], 0.0)
    all_empty = loss(lp, old, adv, np.zeros_like(mask), ref)
    assert float(all_empty[0]) == 0.0 and float(all_empty[1]) == 0.0


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_no_gradient_into_advantages_old_or_reference(aggregation):
    lp, old, adv, mask, ref = _random_inputs(seed=5, per_token_advantage=True)
    opts = PolicyGradientOptions(loss_aggregation=aggregation, kl_coef=0.1, dual_clip_c=3.0)

    def loss(lp, old, adv, ref):
        return policy_gradient_terms(lp, old, adv, mask, opts, ref_logprobs=ref)[0]

    g_lp, g_old, g_adv, g_ref = jax.grad(loss, argnums=(0, 1, 2, 3))(lp, old, adv, ref)
    for g in (g_old, g_adv, g_ref):
        np.testing.assert_array_equal(g, 0.0)
    assert np.abs(g_lp).max() > 1e-3  # the policy does get a gradient


def test_clipped_direction_has_zero_gradient():
    """Token loss -min(ρA, clip(ρ)A): flat where the clip binds, -ρA slope elsewhere."""
    log_ratio = np.log(np.array([1.5, 0.5, 0.5, 1.5, 1.1, 0.9, 4.0], np.float32))
    adv = np.array([1.0, -1.0, 1.0, -1.0, 2.0, -2.0, -1.0], np.float32)
    # A>0 above 1+eps: clipped; A<0 below 1-eps: clipped; A>0 below / A<0 above: not clipped;
    # inside the range: not clipped; A<0 above c=3: dual clip, flat.
    clipped = np.array([1, 1, 0, 0, 0, 0, 1], bool)
    opts = PolicyGradientOptions(clip_eps_low=0.2, clip_eps_high=0.28, dual_clip_c=3.0)
    old = np.zeros((1, 7), np.float32)
    mask = np.ones((1, 7), np.float32)

    def loss(lp):
        return policy_gradient_terms(lp, old, adv[None], mask, opts)[0]

    grads = np.asarray(jax.grad(loss)(log_ratio[None]))[0]
    expected = np.where(clipped, 0.0, -adv * np.exp(log_ratio))
    np.testing.assert_allclose(grads, expected, rtol=1e-6)
    assert np.all(grads[~clipped] != 0)


def _config(**overrides):
    options = dict(get_objective("policy_gradient").defaults)
    options.update(logits_chunk_size=5, **overrides)
    return ml_collections.FrozenConfigDict(options)


@pytest.fixture(scope="module")
def model_batch():
    params = models.init_params(CONFIG, jax.random.key(0))
    params = jax.tree.map(lambda p: p * 4 if p.ndim > 1 else p, params)  # sharper logits
    rng = np.random.RandomState(0)
    batch_size, length = 4, 12
    mask = np.zeros((batch_size, length), np.float32)
    for row, (start, end) in enumerate([(3, 12), (4, 9), (5, 5), (3, 11)]):  # row 2: empty
        mask[row, start:end] = 1
    tokens = rng.randint(0, CONFIG.vocab_size, (batch_size, length)).astype(np.int32)
    batch = dict(
        tokens=tokens,
        targets=np.roll(tokens, -1, axis=1),
        positions=np.broadcast_to(np.arange(length), tokens.shape).astype(np.int32),
        segment_ids=np.ones_like(tokens),
        loss_mask=mask,
        advantages=rng.randn(batch_size).astype(np.float32),
    )
    logits = np.asarray(models.forward(CONFIG, params, tokens), np.float64)
    logp = logits - logits.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    target_logp = np.take_along_axis(logp, batch["targets"][..., None], -1)[..., 0]
    batch["old_logprobs"] = (target_logp + rng.randn(*mask.shape) * 0.3).astype(np.float32)
    batch["ref_logprobs"] = (target_logp + rng.randn(*mask.shape) * 0.3).astype(np.float32)
    batch["sampler_logprobs"] = (target_logp + 0.01).astype(np.float32)
    entropy = -(np.exp(logp) * logp).sum(-1)
    return params, batch, target_logp, entropy


def test_objective_through_the_model_matches_numpy(model_batch):
    params, batch, target_logp, entropy = model_batch
    config = _config(kl_coef=0.05, loss_aggregation="seq_mean_token_mean",
                     clip_eps_high=0.28)
    loss_sum, denominator, metrics = jax.jit(lambda p, b: get_objective("policy_gradient").fn(
        p, b, jax.random.key(0), model=ModelContext(CONFIG), config=config))(params, batch)
    opts = PolicyGradientOptions.from_config(config)
    expected = _numpy_loss(target_logp, batch["old_logprobs"], batch["advantages"],
                           batch["loss_mask"], batch["ref_logprobs"], opts)
    np.testing.assert_allclose(float(loss_sum / denominator), expected, rtol=1e-5)
    on = batch["loss_mask"] > 0
    got = metrics_lib.compute(metrics)
    np.testing.assert_allclose(float(got["entropy"]), entropy[on].mean(), rtol=1e-5)
    np.testing.assert_allclose(float(got["sampler_logprob_abs_diff"]), 0.01, rtol=1e-3)


def test_kl_free_objective_needs_no_reference_and_defaults_on_policy(model_batch):
    params, batch, target_logp, _ = model_batch
    lean = {k: v for k, v in batch.items()
            if k not in ("ref_logprobs", "old_logprobs", "sampler_logprobs")}
    loss_sum, denominator, metrics = jax.jit(lambda p, b: get_objective("policy_gradient").fn(
        p, b, jax.random.key(0), model=ModelContext(CONFIG), config=_config()))(params, lean)
    # On-policy (ratio 1): token_mean loss is -mean(A) over response tokens.
    on = batch["loss_mask"] > 0
    advantage = np.broadcast_to(batch["advantages"][:, None], on.shape)[on]
    np.testing.assert_allclose(float(loss_sum / denominator), -advantage.mean(), rtol=1e-6)
    assert "kl" not in metrics and float(metrics["ratio_max"].compute()) == 1.0
    with pytest.raises(KeyError, match="ref_logprobs"):
        get_objective("policy_gradient").fn(params, lean, jax.random.key(0),
                                            model=ModelContext(CONFIG),
                                            config=_config(kl_coef=0.1))


def test_invalid_options_are_rejected():
    with pytest.raises(ValueError, match="dual_clip_c"):
        PolicyGradientOptions(dual_clip_c=0.5)
    with pytest.raises(ValueError, match="loss_aggregation"):
        PolicyGradientOptions(loss_aggregation="sum")
    with pytest.raises(ValueError, match="kl_estimator"):
        PolicyGradientOptions(kl_estimator="k2")


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_gradient_accumulation_is_exact(model_batch, aggregation):
    """Micro-batch 0 holds rows 0 and 2 (one empty), micro-batch 1 rows 1 and 3."""
    params, batch, _, _ = model_batch
    config = _config(loss_aggregation=aggregation, kl_coef=0.05, kl_estimator="low_var_kl",
                     clip_eps_high=0.28, dual_clip_c=3.0)
    assert_accumulation_exact("policy_gradient", config, ModelContext(CONFIG), params, batch)
