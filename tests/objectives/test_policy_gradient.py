"""policy_gradient: the clipped surrogate, KL estimators, loss aggregations and GSPO's sequence
ratios against NumPy references of the paper formulas (values and gradients); the log-ratio
clamp at extreme ratios; stop-gradients; exact gradient accumulation."""

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
AGGREGATIONS = ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"]
LOG_RATIO_BOUND = 20.0  # verl's clamp of log ρ


def _numpy_ratios(lp, old, mask, importance_ratio):
    """ρ_it in float64 and whether the clamp bound its log: exp(log π_θ − log π_old) per token,
    or GSPO's s_i = exp(mean of the row's token log-ratios) at each of the row's tokens."""
    batch, length = mask.shape
    log_ratio = np.zeros((batch, length))
    for i in range(batch):
        scored = [t for t in range(length) if mask[i, t]]
        token = {t: float(lp[i, t]) - float(old[i, t]) for t in scored}
        for t in scored:
            if importance_ratio == "token":
                log_ratio[i, t] = token[t]
            else:  # sequence / sequence_token: the same value, s_i
                log_ratio[i, t] = sum(token.values()) / len(scored)
    clamped = np.abs(log_ratio) > LOG_RATIO_BOUND
    return np.exp(np.clip(log_ratio, -LOG_RATIO_BOUND, LOG_RATIO_BOUND)), clamped


def _numpy_weights(mask, opts):
    """w_it with loss = Σ_it w_it·l_it under the options' aggregation."""
    lengths = mask.sum(1, keepdims=True)
    sequences = (lengths > 0).sum()
    if opts.loss_aggregation == "token_mean":
        return mask / mask.sum()
    if opts.loss_aggregation == "seq_mean_token_mean":
        return mask / np.maximum(lengths, 1) / sequences
    return mask / (opts.loss_norm_length or mask.shape[1]) / sequences


def _numpy_gradient(lp, old, adv, mask, opts):
    """d loss / d log π_θ, float64, of the clipped surrogate (kl_coef = 0) by the chain rule:
    d pg / d log ρ = −A·ρ where no clip binds (and |log ρ| ≤ 20), else 0; d log ρ_it / d log
    π_θ(y_it) = 1 (token, sequence_token); d log s_i / d log π_θ(y_it) = 1/|y_i| (sequence, whose
    pg_i sits at each of the row's tokens)."""
    assert not opts.kl_coef
    adv = np.broadcast_to(adv[:, None], mask.shape) if adv.ndim == 1 else adv
    adv = np.where(mask > 0, adv, 0.0)
    ratio, clamped = _numpy_ratios(lp, old, mask, opts.importance_ratio)
    low, high = 1 - opts.clip_eps_low, 1 + opts.clip_eps_high
    flat = clamped | ((adv > 0) & (ratio > high)) | ((adv < 0) & (ratio < low))
    if opts.dual_clip_c:
        flat |= (adv < 0) & (ratio > opts.dual_clip_c)
    slope = np.where(flat, 0.0, -adv * ratio) * _numpy_weights(mask, opts)
    if opts.importance_ratio == "sequence":
        lengths = np.maximum(mask.sum(1, keepdims=True), 1)
        return mask * slope.sum(1, keepdims=True) / lengths
    return slope


def _numpy_loss(lp, old, adv, mask, ref, opts):
    """Per-token loops over the GRPO / DAPO / Dr. GRPO / GSPO formulas, float64."""
    batch, length = mask.shape
    adv = np.broadcast_to(adv[:, None], mask.shape) if adv.ndim == 1 else adv
    ratios, _ = _numpy_ratios(lp, old, mask, opts.importance_ratio)
    per_sequence, tokens_total, sequences = [], 0.0, 0
    for i in range(batch):
        token_losses = []
        for t in range(length):
            if not mask[i, t]:
                continue
            ratio = ratios[i, t]
            a = float(adv[i, t])
            clipped = min(max(ratio, 1 - opts.clip_eps_low), 1 + opts.clip_eps_high)
            loss = -min(ratio * a, clipped * a)
            if opts.dual_clip_c and a < 0:
                loss = min(loss, -a * opts.dual_clip_c)
            if opts.kl_coef:
                log_r = float(ref[i, t]) - float(lp[i, t])
                kl = {
                    "k1": -log_r,
                    "k3": np.exp(log_r) - log_r - 1,
                    "low_var_kl": np.clip(
                        np.exp(np.clip(log_r, -20, 20)) - np.clip(log_r, -20, 20) - 1, -10, 10
                    ),
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
    dict(loss_aggregation=agg, **extra)
    for agg, extra in itertools.product(
        AGGREGATIONS,
        [
            dict(),
            dict(clip_eps_low=0.2, clip_eps_high=0.28, dual_clip_c=3.0),
            dict(kl_coef=0.04, kl_estimator="k3"),
            dict(kl_coef=0.1, kl_estimator="k1", loss_norm_length=16),
            dict(kl_coef=0.1, kl_estimator="low_var_kl", clip_eps_low=0.1, dual_clip_c=1.5),
        ],
    )
]


@pytest.mark.parametrize("per_token_advantage", [False, True])
@pytest.mark.parametrize(
    "case", OPTION_CASES, ids=lambda case: "-".join(f"{k}={v}" for k, v in case.items())
)
def test_terms_match_numpy(case, per_token_advantage):
    lp, old, adv, mask, ref = _random_inputs(per_token_advantage=per_token_advantage)
    opts = PolicyGradientOptions(**case)
    loss_sum, denominator, metrics = policy_gradient_terms(
        lp, old, adv, mask, opts, ref_logprobs=ref if opts.kl_coef else None
    )
    expected = _numpy_loss(lp, old, adv, mask, ref, opts)
    assert np.isfinite(float(loss_sum))
    np.testing.assert_allclose(float(loss_sum / denominator), expected, rtol=1e-6, atol=1e-6)
    tokens, sequences = mask.sum(), (mask.sum(1) > 0).sum()
    assert float(denominator) == (tokens if opts.loss_aggregation == "token_mean" else sequences)


def test_health_metrics_match_numpy():
    lp, old, adv, mask, ref = _random_inputs(seed=1)
    sampler = (lp + np.random.RandomState(2).randn(*lp.shape) * 0.1).astype(np.float32)
    entropy = np.random.RandomState(3).rand(*lp.shape).astype(np.float32)
    opts = PolicyGradientOptions(
        clip_eps_low=0.2, clip_eps_high=0.28, dual_clip_c=1.3, kl_estimator="k1"
    )
    _, _, metrics = policy_gradient_terms(
        lp, old, adv, mask, opts, ref_logprobs=ref, sampler_logprobs=sampler, entropy=entropy
    )
    got = metrics_lib.compute(metrics)
    on = mask > 0
    ratio, a = np.exp((lp - old)[on]), np.broadcast_to(adv[:, None], mask.shape)[on]
    expected = {
        "clip_fraction_low": np.mean((a < 0) & (ratio < 0.8)),
        "clip_fraction_high": np.mean((a > 0) & (ratio > 1.28)),
        "dual_clip_fraction": np.mean((a < 0) & (ratio > 1.3)),
        "ratio_min": ratio.min(),
        "ratio_max": ratio.max(),
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
        loss_sum, denominator, _ = policy_gradient_terms(lp, old, adv, mask, opts, ref_logprobs=ref)
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


def _extreme_inputs():
    """Rows 0-3: every response token at log-ratio ±100 (A = +1 / −1); rows 4-5: moderate
    ratios inside the clip range; rows 6-7: one ±100 token among moderate ones."""
    rng = np.random.RandomState(6)
    mask = np.zeros((8, 6), np.float32)
    mask[:, 1:5] = 1  # column 0: prompt, column 5: padding
    log_ratio = rng.uniform(-0.1, 0.1, mask.shape)
    log_ratio[[0, 2]], log_ratio[[1, 3]] = 100.0, -100.0
    log_ratio[6, 2], log_ratio[7, 3] = 100.0, -100.0
    lp = np.full(mask.shape, -0.5)
    lp[log_ratio < 0] -= 100.0  # a log-prob is <= 0: lower π_θ rather than raise π_old
    old = np.where(mask > 0, lp - log_ratio, -1e4).astype(np.float32)
    adv = np.array([1.0, -1.0, -1.0, 1.0, 0.7, -1.3, 1.0, -1.0], np.float32)
    return lp.astype(np.float32), old, adv, mask


@pytest.mark.parametrize("importance_ratio", ["token", "sequence", "sequence_token"])
@pytest.mark.parametrize("dual_clip_c", [0.0, 3.0])
def test_extreme_log_ratios_keep_loss_and_gradient_finite(importance_ratio, dual_clip_c):
    """exp(±100) overflows float32; without the clamp the clip's unused branch makes the
    backward 0·inf = NaN on tokens the clip holds constant. With it: finite loss, exactly 0 on
    clipped / clamped tokens, the reference gradient everywhere else."""
    lp, old, adv, mask = _extreme_inputs()
    opts = PolicyGradientOptions(
        dual_clip_c=dual_clip_c,
        importance_ratio=importance_ratio,
        loss_aggregation="seq_mean_token_mean",
    )

    def loss(lp):
        loss_sum, denominator, _ = policy_gradient_terms(lp, old, adv, mask, opts)
        return loss_sum / denominator

    value, grads = jax.value_and_grad(loss)(lp)
    grads = np.asarray(grads)
    assert np.isfinite(float(value)) and np.all(np.isfinite(grads))
    np.testing.assert_allclose(float(value), _numpy_loss(lp, old, adv, mask, None, opts), rtol=1e-6)
    np.testing.assert_array_equal(grads[:4], 0.0)  # clipped (or beyond the clamp)
    np.testing.assert_array_equal(grads[6, 2], 0.0)
    np.testing.assert_array_equal(grads[7, 3], 0.0)
    np.testing.assert_allclose(
        grads, _numpy_gradient(lp, old, adv, mask, opts), rtol=1e-5, atol=1e-9
    )
    assert np.all(grads[4:6][mask[4:6] > 0] != 0)  # the in-range rows still learn
    if importance_ratio == "token":  # and so do the moderate tokens beside an extreme one
        assert np.all(grads[6, [1, 3, 4]] != 0) and np.all(grads[7, [1, 2, 4]] != 0)


def _gspo_inputs(seed, per_token_advantage=False):
    """_random_inputs, bigger, plus a padding row and junk policy log-probs where unscored."""
    lp, old, adv, mask, ref = _random_inputs(
        seed, batch=12, length=10, per_token_advantage=per_token_advantage
    )
    mask[-1] = 0  # padding row
    old[-1], adv[-1] = -1e4, np.nan
    lp = np.where(mask > 0, lp, 30.0).astype(np.float32)
    return lp, old, adv, mask, ref


GSPO_RATIOS = [("sequence", False), ("sequence_token", False), ("sequence_token", True)]
GSPO_CASES = [
    dict(loss_aggregation=agg, **extra)
    for agg, extra in itertools.product(
        AGGREGATIONS,
        [
            dict(clip_eps_low=3e-4, clip_eps_high=4e-4),  # the paper's
            dict(clip_eps_low=0.05, clip_eps_high=0.08, dual_clip_c=1.05),
            dict(clip_eps_low=0.1, clip_eps_high=0.1, kl_coef=0.04, loss_norm_length=16),
        ],
    )
]


@pytest.mark.parametrize("importance_ratio, per_token_advantage", GSPO_RATIOS, ids=str)
@pytest.mark.parametrize(
    "case", GSPO_CASES, ids=lambda case: "-".join(f"{k}={v}" for k, v in case.items())
)
def test_gspo_matches_numpy(case, importance_ratio, per_token_advantage):
    lp, old, adv, mask, ref = _gspo_inputs(7, per_token_advantage)
    opts = PolicyGradientOptions(importance_ratio=importance_ratio, **case)

    def loss(lp):
        loss_sum, denominator, _ = policy_gradient_terms(
            lp, old, adv, mask, opts, ref_logprobs=ref if opts.kl_coef else None
        )
        return loss_sum / denominator, denominator

    (value, denominator), grads = jax.value_and_grad(loss, has_aux=True)(lp)
    grads = np.asarray(grads)
    np.testing.assert_allclose(
        float(value), _numpy_loss(lp, old, adv, mask, ref, opts), rtol=1e-5, atol=1e-7
    )
    tokens, sequences = mask.sum(), (mask.sum(1) > 0).sum()
    assert float(denominator) == (tokens if opts.loss_aggregation == "token_mean" else sequences)
    assert np.all(np.isfinite(grads))
    np.testing.assert_array_equal(grads[mask == 0], 0.0)
    if not opts.kl_coef:
        expected = _numpy_gradient(lp, old, adv, mask, opts)
        np.testing.assert_allclose(grads, expected, rtol=1e-5, atol=1e-8)
        flat = grads == 0
        assert flat[mask > 0].any() and not flat[mask > 0].all()  # clipped and unclipped
        if not per_token_advantage:  # a sequence is clipped as a whole
            for row_flat, row_mask in zip(flat, mask > 0):
                assert row_flat[row_mask].all() or not row_flat[row_mask].any()


def test_sequence_ratio_needs_one_advantage_per_sequence():
    lp, old, adv, mask, _ = _gspo_inputs(8, per_token_advantage=True)
    with pytest.raises(ValueError, match="sequence_token"):
        policy_gradient_terms(
            lp, old, adv, mask, PolicyGradientOptions(importance_ratio="sequence")
        )


@pytest.mark.parametrize("importance_ratio", ["sequence", "sequence_token"])
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_gspo_with_one_token_sequences_is_the_token_level_loss(importance_ratio, aggregation):
    rng = np.random.RandomState(9)
    batch, length = 10, 8
    lp = (-rng.rand(batch, length) * 3).astype(np.float32)
    mask = np.zeros((batch, length), np.float32)
    mask[np.arange(batch - 2), rng.randint(2, length, batch - 2)] = 1  # last two rows: empty
    old = np.where(mask > 0, lp + rng.randn(batch, length) * 0.3, -1e4).astype(np.float32)
    ref = (lp + rng.randn(batch, length) * 0.5).astype(np.float32)
    adv = rng.randn(batch).astype(np.float32)
    common = dict(
        loss_aggregation=aggregation,
        clip_eps_low=0.1,
        clip_eps_high=0.15,
        dual_clip_c=1.3,
        kl_coef=0.04,
    )

    def run(importance_ratio):
        opts = PolicyGradientOptions(importance_ratio=importance_ratio, **common)

        def loss(lp):
            loss_sum, denominator, metrics = policy_gradient_terms(
                lp, old, adv, mask, opts, ref_logprobs=ref
            )
            return loss_sum / denominator, metrics

        (value, metrics), grads = jax.value_and_grad(loss, has_aux=True)(lp)
        assert np.all(np.isfinite(grads))
        return float(value), np.asarray(grads), metrics_lib.compute(metrics)

    token, sequence = run("token"), run(importance_ratio)
    np.testing.assert_allclose(sequence[0], token[0], rtol=1e-6)
    np.testing.assert_allclose(sequence[1], token[1], rtol=1e-6, atol=1e-9)
    for name, value in token[2].items():
        np.testing.assert_allclose(sequence[2][name], value, rtol=1e-6, err_msg=name)
    assert np.abs(token[1]).max() > 1e-3


@pytest.mark.parametrize(
    "case",
    [
        dict(clip_eps_low=3e-4, clip_eps_high=4e-4),
        dict(clip_eps_low=0.05, clip_eps_high=0.08, dual_clip_c=1.05, kl_coef=0.1),
    ],
    ids=["paper", "dual_clip_kl"],
)
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_gspo_token_equals_gspo_with_sequence_advantages(case, aggregation):
    """The paper: with Â_it = Â_i, GSPO-token's objective and gradient are GSPO's."""
    lp, old, adv, mask, ref = _gspo_inputs(11)

    def run(importance_ratio):
        opts = PolicyGradientOptions(
            importance_ratio=importance_ratio, loss_aggregation=aggregation, **case
        )

        def loss(lp):
            loss_sum, denominator, _ = policy_gradient_terms(
                lp, old, adv, mask, opts, ref_logprobs=ref
            )
            return loss_sum / denominator

        value, grads = jax.value_and_grad(loss)(lp)
        assert np.all(np.isfinite(grads))
        return float(value), np.asarray(grads)

    sequence, sequence_token = run("sequence"), run("sequence_token")
    np.testing.assert_allclose(sequence_token[0], sequence[0], rtol=1e-6)
    np.testing.assert_allclose(sequence_token[1], sequence[1], rtol=1e-5, atol=1e-9)
    assert np.abs(sequence[1]).max() > 1e-3


@pytest.mark.parametrize("importance_ratio", ["sequence", "sequence_token"])
def test_gspo_clip_metrics_are_of_the_sequence_ratio(importance_ratio):
    """Clip fractions count response tokens whose sequence's ratio is clipped; ratio_min /
    ratio_max range over the non-empty sequences' s_i."""
    lp, old, adv, mask, _ = _gspo_inputs(12)
    opts = PolicyGradientOptions(
        importance_ratio=importance_ratio, clip_eps_low=0.05, clip_eps_high=0.08, dual_clip_c=1.05
    )
    got = metrics_lib.compute(policy_gradient_terms(lp, old, adv, mask, opts)[2])
    lengths = mask.sum(1)
    rows = lengths > 0
    log_s = np.array([np.mean((lp - old)[i][mask[i] > 0]) for i in np.flatnonzero(rows)])
    s, a, n = np.exp(log_s), adv[rows], lengths[rows]
    expected = {
        "clip_fraction_low": np.sum(n * ((a < 0) & (s < 0.95))) / n.sum(),
        "clip_fraction_high": np.sum(n * ((a > 0) & (s > 1.08))) / n.sum(),
        "dual_clip_fraction": np.sum(n * ((a < 0) & (s > 1.05))) / n.sum(),
        "ratio_min": s.min(),
        "ratio_max": s.max(),
        "pg_loss": np.sum(
            n
            * np.where(
                (a < 0) & (s > 1.05), -a * 1.05, np.maximum(-a * s, -a * np.clip(s, 0.95, 1.08))
            )
        )
        / n.sum(),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(float(got[name]), value, rtol=1e-5, err_msg=name)
    for name in ("clip_fraction_low", "clip_fraction_high", "dual_clip_fraction"):
        assert 0 < expected[name] < 1, name


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


@pytest.mark.parametrize("importance_ratio", ["token", "sequence"])
def test_objective_through_the_model_matches_numpy(model_batch, importance_ratio):
    params, batch, target_logp, entropy = model_batch
    config = _config(
        kl_coef=0.05,
        loss_aggregation="seq_mean_token_mean",
        clip_eps_high=0.28,
        importance_ratio=importance_ratio,
    )
    loss_sum, denominator, metrics = jax.jit(
        lambda p, b: get_objective("policy_gradient").fn(
            p, b, jax.random.key(0), model=ModelContext(CONFIG), config=config
        )
    )(params, batch)
    opts = PolicyGradientOptions.from_config(config)
    expected = _numpy_loss(
        target_logp,
        batch["old_logprobs"],
        batch["advantages"],
        batch["loss_mask"],
        batch["ref_logprobs"],
        opts,
    )
    np.testing.assert_allclose(float(loss_sum / denominator), expected, rtol=1e-5)
    on = batch["loss_mask"] > 0
    got = metrics_lib.compute(metrics)
    np.testing.assert_allclose(float(got["entropy"]), entropy[on].mean(), rtol=1e-5)
    np.testing.assert_allclose(float(got["sampler_logprob_abs_diff"]), 0.01, rtol=1e-3)


def test_kl_free_objective_needs_no_reference_and_defaults_on_policy(model_batch):
    params, batch, target_logp, _ = model_batch
    lean = {
        k: v
        for k, v in batch.items()
        if k not in ("ref_logprobs", "old_logprobs", "sampler_logprobs")
    }
    loss_sum, denominator, metrics = jax.jit(
        lambda p, b: get_objective("policy_gradient").fn(
            p, b, jax.random.key(0), model=ModelContext(CONFIG), config=_config()
        )
    )(params, lean)
    # On-policy (ratio 1): token_mean loss is -mean(A) over response tokens.
    on = batch["loss_mask"] > 0
    advantage = np.broadcast_to(batch["advantages"][:, None], on.shape)[on]
    np.testing.assert_allclose(float(loss_sum / denominator), -advantage.mean(), rtol=1e-6)
    assert "kl" not in metrics and float(metrics["ratio_max"].compute()) == 1.0
    with pytest.raises(KeyError, match="ref_logprobs"):
        get_objective("policy_gradient").fn(
            params, lean, jax.random.key(0), model=ModelContext(CONFIG), config=_config(kl_coef=0.1)
        )


def test_invalid_options_are_rejected():
    with pytest.raises(ValueError, match="dual_clip_c"):
        PolicyGradientOptions(dual_clip_c=0.5)
    with pytest.raises(ValueError, match="loss_aggregation"):
        PolicyGradientOptions(loss_aggregation="sum")
    with pytest.raises(ValueError, match="kl_estimator"):
        PolicyGradientOptions(kl_estimator="k2")
    with pytest.raises(ValueError, match="importance_ratio"):
        PolicyGradientOptions(importance_ratio="seq")


@pytest.mark.parametrize(
    "aggregation, importance_ratio",
    [
        *[(aggregation, "token") for aggregation in AGGREGATIONS],
        ("seq_mean_token_mean", "sequence"),
        ("token_mean", "sequence_token"),
    ],
)
def test_gradient_accumulation_is_exact(model_batch, aggregation, importance_ratio):
    """Micro-batch 0 holds rows 0 and 2 (one empty), micro-batch 1 rows 1 and 3."""
    params, batch, _, _ = model_batch
    config = _config(
        loss_aggregation=aggregation,
        kl_coef=0.05,
        kl_estimator="low_var_kl",
        clip_eps_high=0.28,
        dual_clip_c=3.0,
        importance_ratio=importance_ratio,
    )
    assert_accumulation_exact("policy_gradient", config, ModelContext(CONFIG), params, batch)
