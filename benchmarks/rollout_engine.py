"""The decode engine (continuous batching, attention over filled blocks) vs the static sampler.

    python benchmarks/rollout_engine.py [--preset=small-20m --slots=16 --only=long_tail,...]
    python benchmarks/rollout_engine.py --preset=qwen2.5-0.5b --dtype=bfloat16   # accelerator
    python benchmarks/rollout_engine.py --preset=qwen2.5-1.5b --dtype=bfloat16 --slots=64

Both engines run in this process, on the same random weights and prompts, with no stop tokens
(a row ends at its budget, so both produce exactly the same tokens: checked), top-p 0.9.

1. long_tail: `--rows` rows, budget M = `--max_new_tokens`, each row's budget drawn from a
   lognormal with median M / 8 (sigma `--sigma`), capped at M: useful tokens/s of each engine
   (generated tokens / wall time). Target: continuous >= 2.5x static.
2. length_scaling: `--scaling_rows` rows generating `--scaling_tokens` tokens after a
   `--prompt_len`-token prompt: total time of each engine (target: continuous <= 0.6x static),
   and the time of the first and the last `--window` steps (T(window) and T(all) - T(all -
   window)); the static sampler's steps cost the same everywhere (its first window against its
   mean window shows it; `--static_last_window` times its last window too), the engine's grow.
3. memory: KV cache bytes each engine allocates for workload 1 (static: N x (P + M) slots,
   engine: slots x S + the prompts' P), against N x (P + M) x fp32 (target <= 0.35x).

Every timing is one run after a compile run of the same shapes in which every token is a stop
token (one step). Also printed: device, dtype, the memory bandwidth a large copy reaches in this
process, and each engine's achieved bandwidth over the length-scaling run (weights + cache bytes
read per model step / step time). `--layers` trims the preset's depth (the CPU record uses a
2-layer small-20m for the 4096-token workload to fit its time). Record results, with the
machine, in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import time

from absl import app, flags
from bench_utils import machine_description, report

_PRESET = flags.DEFINE_string("preset", "small-20m", "reasonrl model preset (random weights)")
_DTYPE = flags.DEFINE_string("dtype", "float32", "compute dtype (bfloat16 on accelerators)")
_LAYERS = flags.DEFINE_integer("layers", 0, "decoder layers (0: the preset's)")
_SLOTS = flags.DEFINE_integer("slots", 0, "decode slots of the engine (0: its default)")
_ONLY = flags.DEFINE_list("only", ["long_tail", "length_scaling", "memory"], "workloads")
_ROWS = flags.DEFINE_integer("rows", 64, "long_tail: rows")
_NEW = flags.DEFINE_integer("max_new_tokens", 1024, "long_tail: budget M")
_SIGMA = flags.DEFINE_float("sigma", 1.0, "long_tail: lognormal sigma of the row budgets")
_PROMPT = flags.DEFINE_integer("prompt_len", 64, "tokens per prompt")
_SCALING_ROWS = flags.DEFINE_integer("scaling_rows", 16, "length_scaling: rows")
_SCALING_TOKENS = flags.DEFINE_integer("scaling_tokens", 4096, "length_scaling: new tokens")
_WINDOW = flags.DEFINE_integer("window", 512, "length_scaling: steps in the first/last window")
_STATIC_LAST = flags.DEFINE_bool(
    "static_last_window", False, "length_scaling: also time the static sampler's last window"
)
_SEED = flags.DEFINE_integer("seed", 0, "budgets, prompts and weights")
_JSON = flags.DEFINE_string("json_out", "", "also write the results to this file")

ENGINES = ("static", "continuous")


def copy_bandwidth(megabytes: int = 512) -> float:
    """GB/s of a device-side copy of a `megabytes` array (read + write), best of 5."""
    import jax
    import jax.numpy as jnp

    x = jnp.ones((megabytes * 2**20 // 4,), jnp.float32)
    copy = jax.jit(lambda a: a + 1.0)
    copy(x).block_until_ready()
    best = min(_timed(lambda: copy(x).block_until_ready()) for _ in range(5))
    return 2 * x.nbytes / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Bench:
    """The model, its weights and a `generate` wrapper shared by the workloads."""

    def __init__(self):
        import jax
        import numpy as np

        from reasonrl import models

        self.np, self.jax = np, jax
        overrides = dict(
            dtype=_DTYPE.value,
            max_position_embeddings=_PROMPT.value + max(_SCALING_TOKENS.value, _NEW.value),
        )
        if _LAYERS.value:
            overrides["num_layers"] = _LAYERS.value
        self.config = models.get_preset(_PRESET.value, **overrides)
        self.params = models.init_params(self.config, jax.random.key(_SEED.value))
        self.rng = np.random.default_rng(_SEED.value)

    def prompts(self, rows: int) -> list[list[int]]:
        return self.rng.integers(1, self.config.vocab_size, (rows, _PROMPT.value)).tolist()

    def generate(self, engine: str, prompts, budgets, width=None, stop_tokens=()):
        from reasonrl import sampling

        return sampling.generate(
            self.config,
            self.params,
            prompts,
            max_new_tokens=budgets,
            rng=self.jax.random.key(1),
            temperature=1.0,
            top_p=0.9,
            stop_tokens=stop_tokens,
            engine=engine,
            decode_slots=_SLOTS.value or None,
            output_width=width,
        )

    def measure(self, engine: str, prompts, budgets, width=None):
        """(result, seconds) of one run, after a compile run of the same shapes in which every
        token is a stop token (the stop set is a traced input: same executable, one step)."""
        every_token = range(self.config.vocab_size)
        self.generate(engine, prompts, budgets, width, stop_tokens=every_token)
        start = time.perf_counter()
        result = self.generate(engine, prompts, budgets, width)
        return result, time.perf_counter() - start

    def bytes_per_token(self, itemsize: int | None = None) -> int:
        """Key + value bytes of one token over all layers."""
        c = self.config
        itemsize = itemsize or self.np.dtype(c.compute_dtype).itemsize
        return 2 * c.num_layers * c.num_kv_heads * c.head_dim * itemsize

    def param_bytes(self) -> int:
        return sum(x.nbytes for x in self.jax.tree.leaves(self.params))


def long_tail(bench, budgets, slots) -> dict:
    """Workload 1: useful tokens/s of both engines on long-tailed row budgets."""
    np = bench.np
    prompts = bench.prompts(len(budgets))
    outputs, seconds = {}, {}
    for engine in ENGINES:
        outputs[engine], seconds[engine] = bench.measure(engine, prompts, budgets)
    np.testing.assert_array_equal(outputs["static"].tokens, outputs["continuous"].tokens)
    useful = int(outputs["static"].lengths.sum())
    return {
        "rows": len(budgets),
        "max_new_tokens": int(budgets.max()),
        "budget_median": float(np.median(budgets)),
        "useful_tokens": useful,
        "decode_slots": slots,
        **{f"{engine}_s": round(seconds[engine], 2) for engine in ENGINES},
        **{f"{engine}_tok_s": round(useful / seconds[engine], 1) for engine in ENGINES},
        **{f"{engine}_model_steps": outputs[engine].decode_steps - 1 for engine in ENGINES},
        "speedup": round(seconds["static"] / seconds["continuous"], 2),
    }


def length_scaling(bench) -> dict:
    """Workload 2: total time, and the first vs the last window of steps, of both engines."""
    from reasonrl.sampling.prompt_block import bucket_length

    np = bench.np
    rows, total, window = _SCALING_ROWS.value, _SCALING_TOKENS.value, _WINDOW.value
    prompts = bench.prompts(rows)
    out = {"rows": rows, "new_tokens": total, "window": window}
    for engine in ENGINES:
        times = {}
        # The static sampler's steps all read the whole cache, so its last window is not timed
        # separately (`--static_last_window` does: one more run of all - window steps).
        runs = (window, total - window, total)
        if engine == "static" and not _STATIC_LAST.value:
            runs = (window, total)
        for steps in runs:
            # Caches and outputs sized for `total` in every run; the rows stop after `steps`.
            budgets = np.full(rows, steps, np.int64)
            _, times[steps] = bench.measure(engine, prompts, budgets, width=total)
        first = times[window]
        step_time = times[total] / total
        # Slots read per row and step: the static sampler reads all P + M, the engine the
        # filled prefix (P + M / 2 on average).
        filled = bucket_length(_PROMPT.value) + total
        filled = filled if engine == "static" else _PROMPT.value + total / 2
        read = bench.param_bytes() + rows * filled * bench.bytes_per_token()
        out[engine] = {
            "total_s": round(times[total], 2),
            "first_window_s": round(first, 3),
            "mean_window_s": round(times[total] / total * window, 3),
            "achieved_GBps": round(read / step_time / 1e9, 1),
        }
        if total - window in times:
            last = times[total] - times[total - window]
            out[engine]["last_window_s"] = round(last, 3)
            out[engine]["last_over_first"] = round(last / first, 2)
    out["continuous_over_static"] = round(
        out["continuous"]["total_s"] / out["static"]["total_s"], 2
    )
    return out


def main(argv):
    del argv
    import jax
    import numpy as np

    from reasonrl.sampling.engine import cache_bytes, cache_slots
    from reasonrl.sampling.generate import default_decode_slots
    from reasonrl.sampling.prompt_block import bucket_length

    bench = Bench()
    results = {
        "machine": machine_description(),
        "device": str(jax.devices()[0].device_kind),
        "preset": _PRESET.value,
        "layers": bench.config.num_layers,
        "params": sum(x.size for x in jax.tree.leaves(bench.params)),
        "dtype": _DTYPE.value,
        "copy_bandwidth_GBps": round(copy_bandwidth(), 1),
    }
    rows, longest = _ROWS.value, _NEW.value
    budgets = np.clip(
        np.round(bench.rng.lognormal(np.log(longest / 8), _SIGMA.value, rows)), 1, longest
    ).astype(np.int64)
    budgets[np.argmax(budgets)] = longest  # one row reaches M: the static loop runs M steps
    slots = _SLOTS.value or default_decode_slots(rows, jax.default_backend())
    if "long_tail" in _ONLY.value:
        results["long_tail"] = long_tail(bench, budgets, slots)
        report(results)
    if "length_scaling" in _ONLY.value:
        results["length_scaling"] = length_scaling(bench)
        report(results)
    if "memory" in _ONLY.value:
        bucket = bucket_length(_PROMPT.value)
        baseline = rows * (bucket + longest) * bench.bytes_per_token(itemsize=4)
        engine = cache_bytes(bench.config, slots, cache_slots(bucket, longest), rows, bucket)
        results["memory"] = {
            "baseline_fp32_bytes": int(baseline),
            "static_cache_bytes": int(rows * (bucket + longest) * bench.bytes_per_token()),
            "continuous_cache_bytes": int(engine),
            "continuous_over_baseline": round(engine / baseline, 3),
        }
    report(results, _JSON.value)


if __name__ == "__main__":
    app.run(main)
