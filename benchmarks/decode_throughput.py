"""Decode throughput: reasonrl.sampling vs Hugging Face `generate`, same model, same process.

    python benchmarks/decode_throughput.py [--preset=small-20m --batch_size=16 --new_tokens=128]

Both sides sample `--new_tokens` tokens for `--batch_size` random prompts of `--prompt_len`
tokens with top-p sampling (top_p=0.9, temperature=1, no top-k) and no early stop (no stop
tokens, eos disabled), from the same weights (reasonrl params saved as a Hugging Face checkpoint
and loaded by transformers). Every measurement is the median of `--repeats` runs after one
untimed warm-up (compilation excluded). Decode time = full generation - prefill (the prefill is
timed with the static sampler's jitted prefill; the engine runs the same prefill inside its one
jitted call). `--engine` picks reasonrl's engine (default: the continuous engine).

Also reports the `num_samples` saving: n samples of one `--shared_prompt_len`-token prompt with
num_samples=n (one prefill) vs n explicit copies of the prompt. Record results, with the machine,
in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import tempfile
import time

from absl import app, flags
from bench_utils import machine_description, report

_PRESET = flags.DEFINE_string("preset", "small-20m", "reasonrl model preset")
_BATCH = flags.DEFINE_integer("batch_size", 16, "prompts per generate call")
_PROMPT = flags.DEFINE_integer("prompt_len", 64, "tokens per prompt")
_NEW = flags.DEFINE_integer("new_tokens", 128, "tokens generated per row")
_TOP_P = flags.DEFINE_float("top_p", 0.9, "nucleus sampling threshold")
_SAMPLES = flags.DEFINE_integer("num_samples", 8, "samples per prompt for the sharing comparison")
_SHARED_PROMPT = flags.DEFINE_integer(
    "shared_prompt_len", 256, "prompt length for the num_samples comparison"
)
_REPEATS = flags.DEFINE_integer("repeats", 3, "timed runs per measurement (median)")
_SKIP_HF = flags.DEFINE_bool("skip_hf", False, "measure reasonrl only")
_JSON = flags.DEFINE_string("json_out", "", "also write the results to this file")
_ENGINE = flags.DEFINE_enum(
    "engine", "auto", ["auto", "continuous", "static"], "reasonrl.sampling.generate engine"
)


def median_seconds(fn) -> float:
    """Median wall time of `fn()` over --repeats runs, after one untimed warm-up."""
    import numpy as np

    fn()
    times = []
    for _ in range(_REPEATS.value):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench_reasonrl(config, params, prompts) -> dict:
    import jax
    import numpy as np

    from reasonrl import sampling
    from reasonrl.parallel import DEFAULT_RULES
    from reasonrl.sampling.decode import build_sampler
    from reasonrl.sampling.prompt_block import pack_prompts

    settings = dict(
        max_new_tokens=_NEW.value, temperature=1.0, top_p=_TOP_P.value, engine=_ENGINE.value
    )

    def full():
        result = sampling.generate(config, params, prompts, rng=jax.random.key(0), **settings)
        assert result.decode_steps == _NEW.value
        return result

    block = pack_prompts(config, prompts, None, max_new_tokens=_NEW.value, pad_id=0)
    sampler = build_sampler(
        config,
        None,
        DEFAULT_RULES,
        block.tokens.shape[0],
        block.tokens.shape[1],
        _NEW.value,
        1,
        False,
        False,
        True,
    )

    def prefill():
        jax.block_until_ready(sampler.prefill(params, block.tokens, block.lengths))

    full_s, prefill_s = median_seconds(full), median_seconds(prefill)
    rows, prompt_len = np.shape(prompts)
    return dict(
        prefill_s=prefill_s,
        decode_s=full_s - prefill_s,
        generate_s=full_s,
        prefill_tokens=rows * block.tokens.shape[1],
        real_prefill_tokens=rows * prompt_len,
    )


def bench_transformers(checkpoint_dir, prompts) -> dict:
    import numpy as np
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(
        checkpoint_dir, dtype=torch.float32
    ).eval()
    inputs = torch.as_tensor(np.asarray(prompts), dtype=torch.long)
    mask = torch.ones_like(inputs)

    def full():
        with torch.no_grad():
            out = model.generate(
                inputs,
                attention_mask=mask,
                do_sample=True,
                top_p=_TOP_P.value,
                top_k=0,
                temperature=1.0,
                max_new_tokens=_NEW.value,
                eos_token_id=None,
                pad_token_id=0,
            )
        assert out.shape[1] == inputs.shape[1] + _NEW.value

    def prefill():
        with torch.no_grad():
            model(inputs, attention_mask=mask, use_cache=True)

    full_s, prefill_s = median_seconds(full), median_seconds(prefill)
    return dict(prefill_s=prefill_s, decode_s=full_s - prefill_s, generate_s=full_s)


def prefill_seconds(config, params, prompts, num_samples) -> float:
    """Median time of the prefill alone (including the cache broadcast to num_samples rows)."""
    import jax

    from reasonrl.parallel import DEFAULT_RULES
    from reasonrl.sampling.decode import build_sampler
    from reasonrl.sampling.prompt_block import pack_prompts

    block = pack_prompts(config, prompts, None, max_new_tokens=_NEW.value, pad_id=0)
    sampler = build_sampler(
        config,
        None,
        DEFAULT_RULES,
        block.tokens.shape[0],
        block.tokens.shape[1],
        _NEW.value,
        num_samples,
        False,
        False,
        True,
    )
    return median_seconds(
        lambda: jax.block_until_ready(sampler.prefill(params, block.tokens, block.lengths))
    )


def bench_num_samples(config, params, prompt) -> dict:
    """n samples of one prompt: shared prefill (num_samples=n) vs n copies of the prompt."""
    import jax

    from reasonrl import sampling

    n = _SAMPLES.value
    settings = dict(
        max_new_tokens=_NEW.value, temperature=1.0, top_p=_TOP_P.value, rng=jax.random.key(0)
    )
    shared = median_seconds(
        lambda: sampling.generate(config, params, [prompt], num_samples=n, **settings)
    )
    copies = median_seconds(lambda: sampling.generate(config, params, [prompt] * n, **settings))
    return dict(
        shared_s=shared,
        copies_s=copies,
        saving=1 - shared / copies,
        shared_prefill_s=prefill_seconds(config, params, [prompt], n),
        copies_prefill_s=prefill_seconds(config, params, [prompt] * n, 1),
    )


def main(argv):
    del argv
    import jax
    import numpy as np

    from reasonrl import models

    config = models.get_preset(_PRESET.value)
    params = models.init_params(config, jax.random.key(0))
    rng = np.random.RandomState(0)
    prompts = rng.randint(0, config.vocab_size, (_BATCH.value, _PROMPT.value)).astype(np.int32)
    decode_tokens = _BATCH.value * _NEW.value

    ours = bench_reasonrl(config, params, prompts)
    results = {
        "machine": machine_description(),
        "preset": _PRESET.value,
        "engine": _ENGINE.value,
        "params": models.num_params(config),
        "batch": _BATCH.value,
        "prompt_len": _PROMPT.value,
        "new_tokens": _NEW.value,
        "top_p": _TOP_P.value,
        "reasonrl_decode_tokens_per_s": decode_tokens / ours["decode_s"],
        "reasonrl_prefill_tokens_per_s": ours["real_prefill_tokens"] / ours["prefill_s"],
        "reasonrl_generate_s": ours["generate_s"],
    }
    if not _SKIP_HF.value:
        with tempfile.TemporaryDirectory() as checkpoint_dir:
            models.save_hf_checkpoint(config, params, checkpoint_dir)
            theirs = bench_transformers(checkpoint_dir, prompts)
        results["hf_decode_tokens_per_s"] = decode_tokens / theirs["decode_s"]
        results["hf_prefill_tokens_per_s"] = ours["real_prefill_tokens"] / theirs["prefill_s"]
        results["hf_generate_s"] = theirs["generate_s"]
        results["decode_ratio_reasonrl_over_hf"] = theirs["decode_s"] / ours["decode_s"]
        results["prefill_ratio_reasonrl_over_hf"] = theirs["prefill_s"] / ours["prefill_s"]
    shared_prompt = rng.randint(0, config.vocab_size, _SHARED_PROMPT.value).tolist()
    sharing = bench_num_samples(config, params, shared_prompt)
    n = _SAMPLES.value
    results[f"num_samples_{n}_generate_s"] = sharing["shared_s"]
    results[f"{n}_prompt_copies_generate_s"] = sharing["copies_s"]
    results["num_samples_generate_saving"] = sharing["saving"]
    results[f"num_samples_{n}_prefill_s"] = sharing["shared_prefill_s"]
    results[f"{n}_prompt_copies_prefill_s"] = sharing["copies_prefill_s"]
    results["num_samples_prefill_speedup"] = (
        sharing["copies_prefill_s"] / sharing["shared_prefill_s"]
    )
    report(results, _JSON.value)


if __name__ == "__main__":
    app.run(main)
