"""Sampling math alone: filtered distributions against a plain-numpy reference, empirically."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reasonrl.sampling import filter_logits, row_keys, sample_tokens, sampling_distribution

# Probabilities deliberately not in id order, with no cumulative sum near the top_p cut-offs used.
PROBS = np.array([0.10, 0.30, 0.02, 0.15, 0.20, 0.08, 0.12, 0.03])
LOGITS = np.log(PROBS).astype(np.float32)
DRAWS = 20_000


def reference_distribution(logits, temperature, top_k, top_p):
    """The filtered distribution, written out token by token."""
    scaled = np.asarray(logits, np.float64) / temperature
    ranked = sorted(range(len(scaled)), key=lambda i: (-scaled[i], i))
    if top_k:
        ranked = ranked[:top_k]
    weights = np.exp(scaled[ranked] - scaled[ranked].max())
    weights /= weights.sum()
    kept, mass = [], 0.0
    for token, weight in zip(ranked, weights):
        if mass >= top_p and top_p < 1:
            break
        kept.append(token)
        mass += weight
    probs = np.zeros(len(scaled))
    probs[kept] = np.exp(scaled[kept] - scaled[kept].max())
    return probs / probs.sum()


SETTINGS = [  # (temperature, top_k, top_p)
    (1.0, 0, 1.0),
    (0.5, 0, 1.0),
    (2.0, 3, 1.0),
    (1.0, 0, 0.6),  # keeps 0.30 + 0.20 + 0.15 = 0.65
    (0.7, 5, 0.8),
    (1.3, 0, 0.05),  # only the top token
]


@pytest.mark.parametrize("temperature,top_k,top_p", SETTINGS)
def test_filtered_distribution_matches_reference(temperature, top_k, top_p):
    got = np.asarray(sampling_distribution(jnp.asarray(LOGITS[None]), temperature, top_k, top_p))[0]
    np.testing.assert_allclose(
        got, reference_distribution(LOGITS, temperature, top_k, top_p), atol=1e-6
    )


@pytest.mark.parametrize("temperature,top_k,top_p", SETTINGS)
def test_empirical_frequencies_match_the_filtered_distribution(temperature, top_k, top_p):
    """20k draws: each kept token's frequency within 5 binomial standard deviations
    (sqrt(p(1-p)/20000) <= 0.0036) of its probability; filtered tokens never drawn."""
    expected = reference_distribution(LOGITS, temperature, top_k, top_p)
    logits = jnp.broadcast_to(jnp.asarray(LOGITS), (DRAWS, LOGITS.size))
    keys = row_keys(jax.random.key(42), 0, jnp.arange(DRAWS))
    drawn = sample_tokens(logits, keys, temperature, top_k, top_p, greedy=False)
    counts = np.bincount(np.asarray(drawn.tokens), minlength=LOGITS.size)
    freq = counts / DRAWS
    bound = 5 * np.sqrt(expected * (1 - expected) / DRAWS)
    assert np.all(np.abs(freq - expected) <= bound + 1e-12), (freq, expected)
    assert np.all(counts[expected == 0] == 0)
    # The returned logprobs are the untempered model's and the sampling distribution's.
    tokens = np.asarray(drawn.tokens)
    np.testing.assert_allclose(np.asarray(drawn.logprobs), np.log(PROBS[tokens]), atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(drawn.sampling_logprobs), np.log(expected[tokens]), atol=1e-5
    )


def test_unfiltered_fast_path_equals_filtered_path_with_filters_off():
    logits = jnp.broadcast_to(jnp.asarray(LOGITS), (64, LOGITS.size))
    keys = row_keys(jax.random.key(0), 3, jnp.arange(64))
    fast = sample_tokens(logits, keys, 0.8, 0, 1.0, greedy=False, use_top_k=False, use_top_p=False)
    full = sample_tokens(logits, keys, 0.8, 0, 1.0, greedy=False)
    np.testing.assert_array_equal(np.asarray(fast.tokens), np.asarray(full.tokens))
    np.testing.assert_allclose(
        np.asarray(fast.sampling_logprobs), np.asarray(full.sampling_logprobs), atol=1e-6
    )


def test_ties_break_towards_the_lower_token_id():
    logits = jnp.asarray([[0.0, 2.0, 2.0, 2.0, 2.0, -1.0]])
    kept_top_k = np.isfinite(np.asarray(filter_logits(logits, 1.0, 2, 1.0)))[0]
    np.testing.assert_array_equal(kept_top_k, [False, True, True, False, False, False])
    equal = jnp.zeros((1, 4))  # four tokens of probability exactly 0.25
    kept_top_p = np.isfinite(np.asarray(filter_logits(equal, 1.0, 0, 0.5)))[0]
    np.testing.assert_array_equal(kept_top_p, [True, True, False, False])
    greedy = sample_tokens(
        logits, row_keys(jax.random.key(0), 0, jnp.arange(1)), 1.0, 0, 1.0, greedy=True
    )
    assert int(greedy.tokens[0]) == 1
    assert float(greedy.sampling_logprobs[0]) == 0.0


def test_top_p_one_keeps_tokens_whose_mass_rounds_away():
    """A long tail of tiny probabilities is kept when top_p == 1 (no float cut-off)."""
    logits = jnp.asarray([[0.0] + [-30.0] * 7])
    assert np.isfinite(np.asarray(filter_logits(logits, 1.0, 0, 1.0))).all()


def test_row_keys_depend_on_row_id_and_step_not_on_batch():
    rng = jax.random.key(7)
    wide = jax.random.key_data(row_keys(rng, 2, jnp.arange(10)))
    narrow = jax.random.key_data(row_keys(rng, 2, jnp.arange(3, 5)))
    np.testing.assert_array_equal(np.asarray(wide[3:5]), np.asarray(narrow))
    other_step = jax.random.key_data(row_keys(rng, 3, jnp.arange(10)))
    assert not np.array_equal(np.asarray(wide), np.asarray(other_step))
    assert len({tuple(np.asarray(k)) for k in wide}) == 10


@pytest.mark.parametrize("seed", range(3))
def test_bisection_filter_equals_sorted_reference_on_random_rows(seed):
    """64 rows x 300 tokens with coarse (heavily tied) logits and random top-k / top-p."""
    rng = np.random.RandomState(seed)
    logits = (np.round(rng.randn(64, 300) * 4) / 2).astype(np.float32)
    logits[:, rng.randint(0, 300, 20)] = -np.inf  # already-masked tokens
    for top_k, top_p in [
        (0, float(rng.uniform(0.05, 0.99))),
        (int(rng.randint(1, 40)), 1.0),
        (int(rng.randint(1, 300)), float(rng.uniform(0.05, 0.99))),
        (400, 0.5),
    ]:
        temperature = float(rng.uniform(0.3, 2.0))
        got = np.isfinite(np.asarray(filter_logits(jnp.asarray(logits), temperature, top_k, top_p)))
        for row in range(64):
            expected = reference_distribution(logits[row], temperature, top_k, top_p) > 0
            np.testing.assert_array_equal(got[row], expected, err_msg=f"{row} {top_k} {top_p}")
