"""`generate` on tiny random transformers checkpoints: HF greedy parity, logprobs against a full
forward pass, rng behaviour, shared prefill, stop tokens, errors and compile caching."""

import jax
import numpy as np
import pytest

from reasonrl import models, sampling
from reasonrl.data import Tokenizer
from reasonrl.parallel import DEFAULT_RULES
from reasonrl.sampling.decode import build_sampler
from reasonrl.sampling.engine import build_engine
from tests.sampling.test_filters import reference_distribution

PROMPT_LENGTHS = (5, 17, 11, 3)  # two buckets (16, 32) in one batch


def make_prompts(vocab_size, lengths=PROMPT_LENGTHS, seed=0):
    rng = np.random.RandomState(seed)
    return [rng.randint(0, vocab_size, n).tolist() for n in lengths]


@pytest.fixture(scope="module")
def qwen3(hf_checkpoints):
    return models.load_hf_checkpoint(hf_checkpoints["qwen3"][1])


def forward_log_probs(config, params, prompts, result, num_samples):
    """Full-sequence forward over prompt + completion (right-padded, padding in segment 0).

    Returns, per row, log-softmax [len, V] at the positions that predict each generated token.
    """
    rows = []
    for row, (tokens, length) in enumerate(zip(result.tokens, result.lengths)):
        rows.append(list(prompts[row // num_samples]) + tokens[:length].tolist())
    width = max(len(r) for r in rows)
    block = np.zeros((len(rows), width), np.int32)
    segments = np.zeros_like(block)
    for i, r in enumerate(rows):
        block[i, : len(r)], segments[i, : len(r)] = r, 1
    logits = np.asarray(models.forward(config, params, block, segment_ids=segments), np.float64)
    out = []
    for row, length in enumerate(result.lengths):
        start = len(prompts[row // num_samples]) - 1
        step_logits = logits[row, start : start + length]
        out.append(
            step_logits
            - np.log(
                np.exp(step_logits - step_logits.max(-1, keepdims=True)).sum(-1, keepdims=True)
            )
            - step_logits.max(-1, keepdims=True)
        )
    return out


@pytest.mark.parametrize("kind", ["qwen2", "qwen3", "llama"])
def test_greedy_equals_transformers_generate(kind, hf_checkpoints):
    import torch

    hf_model, path = hf_checkpoints[kind]
    config, params = models.load_hf_checkpoint(path)
    prompts = make_prompts(config.vocab_size)
    new_tokens = 24
    result = sampling.generate(
        config, params, prompts, max_new_tokens=new_tokens, rng=jax.random.key(0), temperature=0.0
    )
    assert result.decode_steps == new_tokens
    assert (result.lengths == new_tokens).all() and (result.finish_reasons == "length").all()
    # Token-for-token equality is only a fair demand if no greedy choice is a near-tie: every
    # top-1/top-2 margin must exceed 3x the 1e-4 fp32 logit agreement with transformers.
    for row, log_probs in enumerate(forward_log_probs(config, params, prompts, result, 1)):
        top2 = np.sort(log_probs, axis=-1)[:, -2:]
        assert (top2[:, 1] - top2[:, 0]).min() > 3e-4, f"near-tie in row {row}"
        np.testing.assert_array_equal(log_probs.argmax(-1), result.tokens[row])
    for row, prompt in enumerate(prompts):
        ids = torch.tensor([prompt])
        with torch.no_grad():
            expected = hf_model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=new_tokens,
                eos_token_id=None,
                pad_token_id=0,
            )
        expected = expected[0, len(prompt) :].numpy()
        assert expected.shape == (new_tokens,), "transformers stopped early"
        np.testing.assert_array_equal(result.tokens[row], expected, err_msg=f"{kind} row {row}")


def test_logprobs_equal_a_full_forward_pass(qwen3):
    config, params = qwen3
    prompts = make_prompts(config.vocab_size, (6, 19), seed=1)
    temperature, top_p = 0.7, 0.9
    result = sampling.generate(
        config,
        params,
        prompts,
        max_new_tokens=20,
        rng=jax.random.key(3),
        temperature=temperature,
        top_p=top_p,
        num_samples=2,
    )
    assert result.tokens.shape == (4, 20)
    for row, log_probs in enumerate(forward_log_probs(config, params, prompts, result, 2)):
        tokens = result.tokens[row]
        chosen = log_probs[np.arange(len(tokens)), tokens]
        np.testing.assert_allclose(result.logprobs[row], chosen, atol=1e-4, rtol=0)
        filtered = np.array(
            [
                np.log(reference_distribution(step, temperature, 0, top_p)[token])
                for step, token in zip(log_probs, tokens)
            ]
        )
        np.testing.assert_allclose(result.sampling_logprobs[row], filtered, atol=1e-4, rtol=0)
        assert (result.sampling_logprobs[row] > result.logprobs[row]).mean() > 0.5


def test_fixed_rng_repeats_and_different_rng_differs(qwen3):
    config, params = qwen3
    prompts = make_prompts(config.vocab_size, (7, 20))
    kwargs = dict(max_new_tokens=20, temperature=1.0, top_k=50, num_samples=2)
    first = sampling.generate(config, params, prompts, rng=jax.random.key(5), **kwargs)
    again = sampling.generate(config, params, prompts, rng=jax.random.key(5), **kwargs)
    other = sampling.generate(config, params, prompts, rng=jax.random.key(6), **kwargs)
    np.testing.assert_array_equal(first.tokens, again.tokens)
    np.testing.assert_array_equal(first.logprobs, again.logprobs)
    assert not np.array_equal(first.tokens, other.tokens)


def test_shared_prefill_equals_explicit_copies(qwen3):
    config, params = qwen3
    prompts = make_prompts(config.vocab_size, (9, 24), seed=2)
    kwargs = dict(max_new_tokens=20, rng=jax.random.key(11), temperature=0.9, top_p=0.95)
    shared = sampling.generate(config, params, prompts, num_samples=2, **kwargs)
    copies = sampling.generate(config, params, [p for p in prompts for _ in range(2)], **kwargs)
    np.testing.assert_array_equal(shared.tokens, copies.tokens)
    np.testing.assert_allclose(shared.logprobs, copies.logprobs, atol=1e-5)
    for prompt in range(2):
        first, second = shared.tokens[prompt * 2 : (prompt + 1) * 2]
        assert not np.array_equal(first, second), "samples of one prompt are identical"


def test_padded_array_input_equals_list_input(qwen3):
    config, params = qwen3
    prompts = make_prompts(config.vocab_size, (5, 12, 2))
    block = np.full((3, 12), 3, np.int32)
    for i, p in enumerate(prompts):
        block[i, : len(p)] = p
    kwargs = dict(max_new_tokens=16, rng=jax.random.key(0), temperature=0.0)
    from_list = sampling.generate(config, params, prompts, **kwargs)
    from_block = sampling.generate(config, params, block, prompt_lengths=[5, 12, 2], **kwargs)
    np.testing.assert_array_equal(from_list.tokens, from_block.tokens)


def test_stop_tokens_end_rows_pad_them_and_exit_early(qwen3):
    config, params = qwen3
    prompts = make_prompts(config.vocab_size, (8, 13, 4), seed=4)
    free = sampling.generate(
        config, params, prompts, max_new_tokens=16, rng=jax.random.key(0), temperature=0.0
    )
    # Stop row 0 at its 3rd token; rows 1 and 2 are checked against where that token (or not)
    # first appears in their own greedy continuations.
    stop = int(free.tokens[0, 2])
    first_stop = [int(np.argmax(r == stop)) if (r == stop).any() else None for r in free.tokens]
    assert first_stop[0] <= 2
    stopped = sampling.generate(
        config,
        params,
        prompts,
        max_new_tokens=16,
        rng=jax.random.key(0),
        temperature=0.0,
        stop_tokens=(stop,),
        pad_id=-1,
    )
    for row, at in enumerate(first_stop):
        if at is None:
            assert stopped.finish_reasons[row] == "length" and stopped.lengths[row] == 16
            np.testing.assert_array_equal(stopped.tokens[row], free.tokens[row])
            continue
        assert stopped.finish_reasons[row] == "stop"
        assert stopped.lengths[row] == at + 1
        np.testing.assert_array_equal(stopped.tokens[row, : at + 1], free.tokens[row, : at + 1])
        assert stopped.tokens[row, at] == stop
        assert (stopped.tokens[row, at + 1 :] == -1).all()
        assert (stopped.logprobs[row, at + 1 :] == 0).all()
    # Early exit: stop on every row's 4th-or-earlier greedy token.
    stops = tuple(int(free.tokens[row, min(3, row + 1)]) for row in range(3))
    early = sampling.generate(
        config,
        params,
        prompts,
        max_new_tokens=16,
        rng=jax.random.key(0),
        temperature=0.0,
        stop_tokens=stops,
    )
    assert (early.finish_reasons == "stop").all()
    assert early.decode_steps == early.lengths.max() <= 4 < 16
    assert stopped.decode_steps == 16 or all(at is not None for at in first_stop)


class ByteTokenizer(Tokenizer):
    """Bytes as ids 0..255; no special tokens."""

    name = "bytes"

    def encode(self, text, *, add_bos=False, add_eos=False):
        return list(text.encode("utf-8"))

    def decode(self, ids):
        return bytes(ids).decode("utf-8", errors="replace")

    vocab_size = 256
    bos_id = eos_id = declared_pad_id = None

    def token_to_id(self, token):
        return None


def test_generate_text_decodes_the_generated_tokens(hf_checkpoints):
    config, params = models.load_hf_checkpoint(hf_checkpoints["qwen2"][1])
    tokenizer = ByteTokenizer()
    out = sampling.generate_text(
        config,
        params,
        tokenizer,
        ["Hello", "2 + 2 ="],
        max_new_tokens=8,
        rng=jax.random.key(0),
        temperature=0.0,
        num_samples=2,
    )
    assert len(out.texts) == 4 and out.result.tokens.shape == (4, 8)
    for text, tokens in zip(out.texts, out.result.tokens):
        assert text == tokenizer.decode(tokens.tolist())
    direct = sampling.generate(
        config,
        params,
        [tokenizer.encode("Hello")],
        max_new_tokens=8,
        rng=jax.random.key(0),
        temperature=0.0,
    )
    np.testing.assert_array_equal(out.result.tokens[0], direct.tokens[0])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(prompt_tokens=[[1, 2], []]), r"prompt_tokens\[1\] is empty"),
        (dict(prompt_tokens=[[1, 2], [3, 256]]), r"prompt_tokens\[1\]\[1\] = 256 is outside"),
        (dict(prompt_tokens=[[-1]]), r"prompt_tokens\[0\]\[0\] = -1 is outside"),
        (dict(prompt_tokens=[[1] * 250]), r"prompt_tokens\[0\].*max_position_embeddings=256"),
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(max_new_tokens=-3), "max_new_tokens"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(temperature=-0.1), "temperature"),
        (dict(top_k=-1), "top_k"),
        (dict(num_samples=0), "num_samples"),
        (dict(stop_tokens=(300,)), "stop_tokens"),
    ],
)
def test_bad_inputs_raise_value_errors_naming_the_argument(qwen3, kwargs, message):
    config, params = qwen3
    args = dict(prompt_tokens=[[1, 2, 3]], max_new_tokens=8, rng=jax.random.key(0))
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        sampling.generate(config, params, args.pop("prompt_tokens"), **args)


@pytest.mark.parametrize("engine", ["static", "continuous"])
def test_prompt_lengths_in_one_bucket_do_not_recompile(qwen3, engine):
    config, params = qwen3
    kwargs = dict(max_new_tokens=5, rng=jax.random.key(0), temperature=0.8, engine=engine)
    sampling.generate(config, params, make_prompts(config.vocab_size, (3, 9)), **kwargs)
    if engine == "static":
        builder = build_sampler
        sampler = build_sampler(config, None, DEFAULT_RULES, 2, 16, 5, 1, False, False, False)
        compiled = (sampler.prefill, sampler.decode)
    else:
        builder = build_engine
        compiled = (build_engine(config, None, DEFAULT_RULES, 2, 16, 5, 1, 2, False, False, False),)
    builds = builder.cache_info().currsize
    sampling.generate(config, params, make_prompts(config.vocab_size, (12, 16)), **kwargs)
    sampling.generate(
        config, params, make_prompts(config.vocab_size, (1, 2)), **dict(kwargs, temperature=1.3)
    )
    assert builder.cache_info().currsize == builds
    assert all(fn._cache_size() == 1 for fn in compiled)
    sampling.generate(config, params, make_prompts(config.vocab_size, (17, 2)), **kwargs)
    assert builder.cache_info().currsize == builds + 1  # a new bucket does compile


def test_bucket_lengths():
    assert [sampling.bucket_length(n) for n in (1, 16, 17, 100, 512, 513, 1500)] == [
        16,
        16,
        32,
        128,
        512,
        1024,
        1536,
    ]
