"""The RL rollout: train-batch layout, sampler/trainer log-prob agreement, reward terms."""

import jax
import numpy as np
import pytest

from reasonrl import data as data_lib
from reasonrl import models
from reasonrl.data.prompt_templates import prompt_token_ids
from reasonrl.objectives import ModelContext
from reasonrl.objectives.logprobs import token_statistics
from reasonrl.rl.rollout import RolloutSettings, sample_rollout, score_rollout, train_batch
from reasonrl.synthetic import arithmetic
from tests.train.stages import TINY_MODEL

PAD = 0


def _settings(**overrides):
    values = dict(
        group_size=2,
        max_prompt_len=6,
        max_new_tokens=4,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        stop_tokens=(2,),
        pad_id=PAD,
    )
    values.update(overrides)
    return RolloutSettings(**values)


def _hand_rollout():
    """3 rows: prompt lengths 3/6/1, completion lengths 4/0/2, distinct ids everywhere."""
    rng = np.random.default_rng(0)
    prompt_lengths = np.array([3, 6, 1], np.int32)
    completion_lengths = np.array([4, 0, 2], np.int32)
    prompt_tokens = np.zeros((3, 6), np.int32)
    completion_tokens = np.zeros((3, 4), np.int32)
    logprobs = np.zeros((3, 4), np.float32)
    for i in range(3):
        prompt_tokens[i, : prompt_lengths[i]] = 10 + 10 * i + np.arange(prompt_lengths[i])
        completion_tokens[i, : completion_lengths[i]] = (
            100 + 10 * i + np.arange(completion_lengths[i])
        )
        logprobs[i, : completion_lengths[i]] = -rng.uniform(0.1, 3, completion_lengths[i])
    return {
        "prompt_tokens": prompt_tokens,
        "prompt_lengths": prompt_lengths,
        "completion_tokens": completion_tokens,
        "completion_lengths": completion_lengths,
        "logprobs": logprobs,
        "sampling_logprobs": logprobs - 1.0,
    }


def _reference_row(prompt, completion, completion_logprobs, seq_len):
    """Row-by-row construction straight from the definition (prompt, completion, padding)."""
    sequence = list(prompt) + list(completion)
    tokens = sequence + [PAD] * (seq_len - len(sequence))
    targets = tokens[1:] + [PAD]
    mask = [1.0 if len(prompt) <= t + 1 < len(sequence) else 0.0 for t in range(seq_len)]
    lps = [
        float(completion_logprobs[t + 1 - len(prompt)]) if mask[t] else 0.0 for t in range(seq_len)
    ]
    segments = [1 if t < len(sequence) else 0 for t in range(seq_len)]
    return tokens, targets, mask, lps, segments


def test_train_batch_layout_matches_row_by_row_reference():
    rollout = _hand_rollout()
    advantages = np.array([0.5, -1.0, 2.0], np.float32)
    batch = train_batch(rollout, advantages, seq_len=12, pad_id=PAD, rows=4)
    assert {k: v.shape for k, v in batch.items()} == {
        "tokens": (4, 12),
        "targets": (4, 12),
        "positions": (4, 12),
        "segment_ids": (4, 12),
        "loss_mask": (4, 12),
        "advantages": (4,),
        "sampler_logprobs": (4, 12),
    }
    for i in range(3):
        p, c = rollout["prompt_lengths"][i], rollout["completion_lengths"][i]
        tokens, targets, mask, lps, segments = _reference_row(
            rollout["prompt_tokens"][i, :p],
            rollout["completion_tokens"][i, :c],
            rollout["logprobs"][i],
            12,
        )
        np.testing.assert_array_equal(batch["tokens"][i], tokens)
        np.testing.assert_array_equal(batch["targets"][i], targets)
        np.testing.assert_array_equal(batch["loss_mask"][i], mask)
        np.testing.assert_allclose(batch["sampler_logprobs"][i], lps)
        np.testing.assert_array_equal(batch["segment_ids"][i], segments)
        np.testing.assert_array_equal(batch["positions"][i], np.arange(12))
    assert batch["loss_mask"][0].sum() == 4 and batch["loss_mask"][1].sum() == 0
    # The filler row: nothing scored, no tokens, zero advantage.
    assert batch["loss_mask"][3].sum() == 0 and batch["segment_ids"][3].sum() == 0
    assert batch["advantages"][3] == 0
    tempered = train_batch(
        rollout, advantages, seq_len=12, pad_id=PAD, sampler_field="sampling_logprobs"
    )
    scored = batch["loss_mask"][:3] > 0
    np.testing.assert_allclose(
        tempered["sampler_logprobs"][scored], batch["sampler_logprobs"][:3][scored] - 1.0
    )


@pytest.fixture(scope="module")
def addition_tokenizer(tmp_path_factory):
    path = data_lib.train_sentencepiece(
        str(arithmetic_corpus(tmp_path_factory.mktemp("addition"))),
        str(tmp_path_factory.mktemp("tok")),
        vocab_size=278,
    )
    return data_lib.load_tokenizer(path)


def arithmetic_corpus(directory):
    return arithmetic.write_addition_dataset(directory, train=2000, test=50, preference_pairs=10)[
        "corpus"
    ]


def test_trainer_logprobs_equal_sampler_logprobs(addition_tokenizer):
    """The policy-gradient ratio starts at exactly the sampler's distribution: a forward pass
    over the assembled batch reproduces the sampler's log-probs at every scored position."""
    tokenizer = addition_tokenizer
    config = models.get_preset("tiny-qwen3", **TINY_MODEL, vocab_size=tokenizer.vocab_size)
    params = models.init_params(config, jax.random.key(3))
    problems = arithmetic.addition_problems(3, seed=5)
    prompts = {
        "prompt_ids": [
            np.asarray(
                prompt_token_ids(
                    arithmetic.question(a, b),
                    prompt_template="plain",
                    chat_template="chatml",
                    tokenizer=tokenizer,
                )
            )
            for a, b in problems
        ],
        "answer": [str(a + b) for a, b in problems],
    }
    settings = _settings(group_size=4, max_prompt_len=32, max_new_tokens=6)
    rollout = sample_rollout(config, params, tokenizer, prompts, settings, jax.random.key(1))
    assert rollout["completion_tokens"].shape == (12, 6)
    batch = train_batch(rollout, np.zeros(12), seq_len=38, pad_id=PAD)
    model = ModelContext(config)
    hidden = model.hidden(params, batch)
    logprobs = np.asarray(token_statistics(config, params, hidden, batch["targets"]).logprobs)
    scored = batch["loss_mask"] > 0
    assert scored.sum() == rollout["completion_lengths"].sum() > 0
    np.testing.assert_allclose(logprobs[scored], batch["sampler_logprobs"][scored], atol=1e-4)


def test_score_rollout_terms():
    rollout = {
        "completion_text": np.array(["12", "13", "\\boxed{7}", "x"], dtype=object),
        "answer": np.array(["12", "12", "7", "7"], dtype=object),
        "completion_lengths": np.array([2, 2, 4, 4], np.int32),
    }
    plain = score_rollout(rollout, _settings())
    np.testing.assert_array_equal(plain["correct"], [1, 0, 1, 0])
    np.testing.assert_array_equal(plain["rewards"], [1, 0, 1, 0])
    dapo = score_rollout(rollout, _settings(wrong_reward=-1.0, overlong_cache_length=2))
    # L_max = 4, cache 2: lengths 2 -> 0, 4 -> (2 - 4) / 2 = -1.
    np.testing.assert_allclose(dapo["reward_overlong"], [0, 0, -1, -1])
    np.testing.assert_allclose(dapo["rewards"], [1, -1, 0, -2])
    formatted = score_rollout(rollout, _settings(format_weight=0.5))
    np.testing.assert_allclose(formatted["reward_format"], [0, 0, 0.5, 0])
    np.testing.assert_allclose(formatted["rewards"], [1, 0, 1.5, 0])


def test_a_prompt_beyond_the_models_context_is_refused():
    """The prompt pipeline keeps prompts within max_prompt_len; one that still leaves no room
    for max_new_tokens in the model's context is a bug, not a sample to skip."""
    config = models.get_preset(
        "tiny-qwen3", **dict(TINY_MODEL, max_position_embeddings=16), vocab_size=64
    )
    prompts = {"prompt_ids": [[7] * 5, [7] * 13], "answer": ["1", "2"]}
    with pytest.raises(ValueError, match=r"a prompt of 13 tokens exceeds max_prompt_len=12"):
        sample_rollout(config, None, None, prompts, _settings(max_prompt_len=32), jax.random.key(0))
