"""The continuous-batching engine: the static sampler's outputs, row for row, from fewer slots."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reasonrl import models, sampling
from reasonrl.models.transformer import SlotCache
from reasonrl.sampling.engine import cache_bytes, cache_slots
from tests.sampling.test_generate import forward_log_probs, make_prompts

PROMPT_LENGTHS = (7, 19, 3, 12, 30)
BUDGETS = (9, 4, 14, 1, 6)
MODES = {
    "greedy": dict(temperature=0.0),
    "top_p": dict(temperature=1.0, top_p=0.85),
    "top_k": dict(temperature=0.7, top_k=9),
}


@pytest.fixture(scope="module")
def qwen3(hf_checkpoints):
    return models.load_hf_checkpoint(hf_checkpoints["qwen3"][1])


def run(config, params, engine="continuous", mode="top_p", slots=None, **kwargs):
    settings = dict(
        max_new_tokens=list(BUDGETS),
        rng=jax.random.key(11),
        num_samples=2,
        engine=engine,
        decode_slots=slots,
        **MODES[mode],
    )
    settings.update(kwargs)
    prompts = make_prompts(config.vocab_size, PROMPT_LENGTHS, seed=3)
    return sampling.generate(config, params, prompts, **settings)


def assert_same_rows(got, want):
    np.testing.assert_array_equal(got.tokens, want.tokens)
    np.testing.assert_array_equal(got.lengths, want.lengths)
    np.testing.assert_array_equal(got.finish_reasons, want.finish_reasons)
    np.testing.assert_allclose(got.logprobs, want.logprobs, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got.sampling_logprobs, want.sampling_logprobs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("slots", [1, 3, 64])
def test_continuous_rows_equal_static_rows(qwen3, mode, slots):
    """Same keys, tokens, logprobs, lengths and finish reasons, whatever the slot count; stop
    tokens end some rows early (the stop set is the tokens the static run drew at step 2)."""
    config, params = qwen3
    plain = run(config, params, "static", mode)
    stops = tuple(sorted({int(t) for t in plain.tokens[::3, 2]}))
    static = run(config, params, "static", mode, stop_tokens=stops)
    assert (static.finish_reasons == "stop").any() and (static.finish_reasons == "length").any()
    assert_same_rows(run(config, params, "continuous", mode, slots, stop_tokens=stops), static)


def test_auto_is_continuous(qwen3):
    config, params = qwen3
    auto, continuous = (run(config, params, engine, slots=2) for engine in ("auto", "continuous"))
    assert auto.decode_rows == continuous.decode_rows == 2
    assert auto.decode_steps == continuous.decode_steps


def test_freed_slots_take_the_next_row_at_once(qwen3):
    """2 slots, budgets [20, 2, 2, ..., 2] without stops: slot A runs row 0 for 19 steps while
    slot B runs rows 1..7 back to back (one step each), so the queue drains in 19 model steps. A
    loop that waited for both slots to finish before refilling would need 19 + 3."""
    config, params = qwen3
    prompts = make_prompts(config.vocab_size, (5,) * 8, seed=1)
    budgets = [20] + [2] * 7
    got = sampling.generate(config, params, prompts, max_new_tokens=budgets, rng=0, decode_slots=2)
    np.testing.assert_array_equal(got.lengths, budgets)
    assert got.decode_rows == 2
    assert got.decode_steps - 1 == 19


def test_one_slot_runs_rows_back_to_back(qwen3):
    """One slot: every model step serves a row (a row of length l takes l - 1 steps after the
    draw from its prompt's logits; budget-1 rows take none)."""
    config, params = qwen3
    got = run(config, params, "continuous", slots=1)
    assert (got.lengths == 1).any()
    assert got.decode_steps - 1 == (got.lengths - 1).sum()


@pytest.mark.parametrize("engine", ["static", "continuous"])
def test_per_prompt_budgets(qwen3, engine):
    """Each prompt's samples stop at its budget; outputs are as wide as the longest budget."""
    config, params = qwen3
    got = run(config, params, engine)
    want = np.repeat(BUDGETS, 2)
    np.testing.assert_array_equal(got.lengths, want)
    assert (got.finish_reasons == "length").all()
    assert got.tokens.shape == (len(want), max(BUDGETS))
    after_end = np.arange(max(BUDGETS))[None, :] >= want[:, None]
    assert (got.tokens[after_end] == 0).all() and (got.logprobs[after_end] == 0).all()
    # A budget ends a row, not the batch: rows with a larger budget are unaffected by it.
    whole = run(config, params, engine, max_new_tokens=max(BUDGETS))
    inside = ~after_end
    np.testing.assert_array_equal(got.tokens[inside], whole.tokens[inside])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_new_tokens=[3, 4]), "one budget per prompt"),
        (dict(max_new_tokens=[3, 0, 1, 1, 1]), "positive integers"),
        (dict(engine="paged"), "engine must be one of"),
        (dict(decode_slots=0), "decode_slots must be a positive integer"),
    ],
)
def test_bad_engine_arguments_raise(qwen3, kwargs, message):
    config, params = qwen3
    with pytest.raises(ValueError, match=message):
        run(config, params, **{"engine": "continuous", **kwargs})


def test_bf16_cache_is_bf16_and_its_logprobs_stay_close(qwen3):
    """A bf16 model keeps a bf16 cache (half the bytes); its logprobs stay within the bf16
    forward bound of the HF parity test (3% of the fp32 logit range) of an fp32 full forward
    over the same tokens, and close to a bf16 full forward (the cache adds no rounding: bf16
    compute produces bf16 keys and values anyway)."""
    config, params = qwen3
    bf16 = config.replace(dtype="bfloat16")
    assert SlotCache.empty(bf16, 2, 128).keys.dtype == jnp.bfloat16
    assert cache_bytes(bf16, 4, 256, 2, 16) * 2 == cache_bytes(config, 4, 256, 2, 16)
    prompts = make_prompts(config.vocab_size, PROMPT_LENGTHS, seed=3)
    got = sampling.generate(
        bf16, params, prompts, max_new_tokens=12, rng=3, temperature=1.0, decode_slots=3
    )
    logits_range = []
    errors = {"fp32": [], "bf16": []}
    for name, model in (("fp32", config), ("bf16", bf16)):
        reference = forward_log_probs(model, params, prompts, got, num_samples=1)
        for row, log_probs in enumerate(reference):
            length = got.lengths[row]
            want = log_probs[np.arange(length), got.tokens[row, :length]]
            errors[name].append(np.abs(got.logprobs[row, :length] - want).max())
            if name == "fp32":
                logits_range.append(np.ptp(log_probs))
    fp32_error, bf16_error = max(errors["fp32"]), max(errors["bf16"])
    assert 0 < fp32_error <= 0.03 * min(logits_range), (fp32_error, min(logits_range))
    assert bf16_error <= 0.05, bf16_error


def test_cache_is_sized_by_slots_not_rows(qwen3):
    config, _ = qwen3
    assert cache_slots(16, 1) == 128 and cache_slots(64, 1024) == 1152
    per_token = 2 * config.num_layers * config.num_kv_heads * config.head_dim * 4
    assert cache_bytes(config, 16, 1152, 64, 64) == per_token * (16 * 1152 + 64 * 64)
