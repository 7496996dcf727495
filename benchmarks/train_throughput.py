"""Training throughput: reasonrl vs Hugging Face transformers + torch, same config, same run.

    python benchmarks/train_throughput.py [--preset=small-20m --batch_size=8 --seq_len=256]

Both sides train the same decoder (AdamW, fp32 master weights) on the same random batch for
`--steps` timed steps after `--warmup` untimed ones, in alternating blocks (two rounds) so that
drift in machine load reaches both. Prints tokens/s of each, their ratio, and
reasonrl's achieved FLOP/s against a matmul peak measured in this run. Record results, with the
machine, in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import time

from absl import app, flags
from bench_utils import machine_description, report

_PRESET = flags.DEFINE_string("preset", "small-20m", "reasonrl model preset")
_BATCH = flags.DEFINE_integer("batch_size", 8, "rows per step")
_SEQ = flags.DEFINE_integer("seq_len", 256, "tokens per row")
_STEPS = flags.DEFINE_integer("steps", 10, "timed steps")
_WARMUP = flags.DEFINE_integer("warmup", 3, "untimed steps (compilation, allocator warm-up)")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "compute dtype")
_SKIP_HF = flags.DEFINE_bool("skip_hf", False, "measure reasonrl only")
_JSON = flags.DEFINE_string("json_out", "", "also write the results to this file")


def train_flops_per_token(config) -> float:
    """6 N (matmul params, forward + backward) + 12 L H Dh T (attention scores and values, the
    full sequence T counted, as MFU figures usually do)."""
    from reasonrl.models.flops import forward_flops_per_token

    return 3 * forward_flops_per_token(config, _SEQ.value)


def matmul_peak_flops(dtype: str, size: int = 2048, repeats: int = 20) -> float:
    """Best-case FLOP/s of a square matmul on the default JAX device."""
    import jax

    a = jax.random.normal(jax.random.key(0), (size, size), dtype)
    b = jax.random.normal(jax.random.key(1), (size, size), dtype)
    matmul = jax.jit(lambda x, y: x @ y)
    matmul(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def reasonrl_step(config, tokens, targets):
    """A zero-argument callable running one reasonrl train step to completion."""
    import jax
    import ml_collections
    import numpy as np
    import optax

    from reasonrl import models, parallel
    from reasonrl.models.layers import ActivationSharding
    from reasonrl.objectives import ModelContext, get_objective
    from reasonrl.train import (
        StepConfig,
        TrainState,
        jit_train_step,
        make_train_step,
        state_shardings,
    )

    mesh = parallel.make_mesh((1, -1, 1))
    tx = optax.adamw(1e-4, weight_decay=0.0)
    params = models.init_params(config, jax.random.key(0), mesh=mesh)
    state = TrainState.create(params, tx, jax.random.key(1))
    shardings = state_shardings(
        jax.eval_shape(lambda: state), models.param_shardings(config, mesh), mesh
    )
    state = jax.device_put(state, shardings)
    batch = dict(
        tokens=tokens,
        targets=targets,
        loss_mask=np.ones_like(tokens, np.float32),
        positions=np.broadcast_to(np.arange(tokens.shape[1]), tokens.shape).astype(np.int32),
        segment_ids=np.ones_like(tokens),
    )
    objective = get_objective("next_token")
    step = jit_train_step(
        make_train_step(
            objective.fn,
            ml_collections.FrozenConfigDict(objective.defaults),
            ModelContext(config, ActivationSharding(mesh)),
            tx,
            optax.constant_schedule(1e-4),
            StepConfig(),
        ),
        shardings,
        mesh,
        tuple(sorted(batch)),
    )
    batch = jax.device_put(batch, parallel.batch_sharding(mesh))
    holder = {"state": state}

    def run():
        holder["state"], metrics = step(holder["state"], batch)
        jax.block_until_ready(metrics)

    return run


def transformers_step(config, tokens, targets):
    """A zero-argument callable running one transformers + torch train step."""
    import torch
    import transformers

    from reasonrl import models

    hf_config = transformers.AutoConfig.for_model(
        **{k: v for k, v in config.to_hf_dict().items() if k not in ("architectures",)}
    )
    torch_dtype = torch.bfloat16 if config.dtype == "bfloat16" else torch.float32
    model = transformers.AutoModelForCausalLM.from_config(hf_config, dtype=torch.float32)
    model.train()
    assert sum(p.numel() for p in model.parameters()) == models.num_params(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    inputs = torch.as_tensor(tokens, dtype=torch.long)
    labels = torch.as_tensor(targets, dtype=torch.long)

    def step():
        with torch.autocast("cpu", dtype=torch_dtype, enabled=torch_dtype != torch.float32):
            logits = model(inputs).logits
            loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), labels.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def median_step_seconds(steps: dict, rounds: int = 2) -> dict:
    """Times each callable in blocks, alternating blocks over `rounds` (A-block B-block A-block
    B-block) so that slow drift in machine load hits both; returns median seconds per step.

    Blocks rather than single alternating steps: both runtimes keep worker threads spinning
    for a while after each op, which would tax whichever side runs next.
    """
    import numpy as np

    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, run in steps.items():
            for _ in range(_WARMUP.value):
                run()
            for _ in range(_STEPS.value):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def main(argv):
    del argv
    import numpy as np

    from reasonrl import models

    config = models.get_preset(_PRESET.value, dtype=_DTYPE.value)
    rng = np.random.RandomState(0)
    shape = (_BATCH.value, _SEQ.value)
    tokens = rng.randint(0, config.vocab_size, shape).astype(np.int32)
    targets = rng.randint(0, config.vocab_size, shape).astype(np.int32)
    tokens_per_step = _BATCH.value * _SEQ.value

    peak = matmul_peak_flops(_DTYPE.value)
    steps = {"reasonrl": reasonrl_step(config, tokens, targets)}
    if not _SKIP_HF.value:
        steps["hf"] = transformers_step(config, tokens, targets)
    seconds = median_step_seconds(steps)
    ours = seconds["reasonrl"]
    results = {
        "machine": machine_description(),
        "preset": _PRESET.value,
        "params": models.num_params(config),
        "dtype": _DTYPE.value,
        "batch": list(shape),
        "reasonrl_tokens_per_s": tokens_per_step / ours,
        "matmul_peak_flops": peak,
        "reasonrl_flops": train_flops_per_token(config) * tokens_per_step / ours,
    }
    results["fraction_of_matmul_peak"] = results["reasonrl_flops"] / peak
    if not _SKIP_HF.value:
        theirs = seconds["hf"]
        results["hf_tokens_per_s"] = tokens_per_step / theirs
        results["ratio_reasonrl_over_hf"] = theirs / ours
    report(results, _JSON.value)


if __name__ == "__main__":
    app.run(main)
