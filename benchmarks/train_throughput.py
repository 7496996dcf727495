"""Training throughput: reasonrl vs Hugging Face transformers + torch, same config, same run.

    python benchmarks/train_throughput.py [--preset=small-20m --batch_size=8 --seq_len=256]
    python benchmarks/train_throughput.py --skip_hf --batch_size=1 --seq_len=32768 --remat=full

Prints the device kind, the attention implementation the model uses at this length, peak
memory (the device's `memory_stats()` where it has them, else the process's peak RSS, plus
XLA's own accounting of the compiled step) and MFU, so an accelerator run is the same command.

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
_ATTENTION = flags.DEFINE_enum(
    "attention", "auto", ["auto", "blockwise", "dense", "cudnn", "splash"], "ModelConfig.attention"
)
_REMAT = flags.DEFINE_enum(
    "remat", "none", ["none", "full", "save_matmul_outputs"], "ModelConfig.remat"
)
_Q_BLOCK = flags.DEFINE_integer("q_block", 0, "attention_q_block (0: the config default)")
_KV_BLOCK = flags.DEFINE_integer("kv_block", 0, "attention_kv_block (0: the config default)")
_ROUNDS = flags.DEFINE_integer("rounds", 2, "alternating timing rounds")
_COMPILE_ONLY = flags.DEFINE_bool(
    "compile_only", False, "only compile the step and report XLA's memory accounting"
)

# Dense bf16 peak FLOP/s by device kind, for MFU on accelerators (CPU: a measured matmul).
PEAK_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,
    "TPU v5e": 197e12,
    "TPU v5p": 459e12,
    "TPU v6 lite": 918e12,
    "TPU v6e": 918e12,
}


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


def reasonrl_step(config, tokens, targets, memory: dict | None = None):
    """A zero-argument callable running one reasonrl train step to completion.

    Compiles the step first; `memory` (if given) receives XLA's accounting of it."""
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
    analysis = step.lower(state, batch).compile().memory_analysis()
    if memory is not None and analysis is not None:
        memory["xla_temp_bytes"] = int(analysis.temp_size_in_bytes)
        memory["xla_argument_bytes"] = int(analysis.argument_size_in_bytes)
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


def median_step_seconds(steps: dict, rounds: int | None = None) -> dict:
    """Times each callable in blocks, alternating blocks over `rounds` (A-block B-block A-block
    B-block) so that slow drift in machine load hits both; returns median seconds per step.

    Blocks rather than single alternating steps: both runtimes keep worker threads spinning
    for a while after each op, which would tax whichever side runs next.
    """
    import numpy as np

    times = {name: [] for name in steps}
    for _ in range(_ROUNDS.value if rounds is None else rounds):
        for name, run in steps.items():
            for _ in range(_WARMUP.value):
                run()
            for _ in range(_STEPS.value):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def peak_memory() -> tuple[int, str]:
    """(bytes, how measured): the device allocator's peak where it reports one, else the
    process's peak resident set size (CPU)."""
    import resource

    import jax

    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"]), "device peak_bytes_in_use"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process peak RSS"


def peak_flops(device_kind: str) -> tuple[float, str]:
    """(peak FLOP/s, source) for MFU: the device table, else a matmul measured here."""
    for name, flops in PEAK_FLOPS.items():
        if name.lower() in device_kind.lower():
            return flops, f"{name} bf16 dense peak"
    return matmul_peak_flops(_DTYPE.value), "matmul measured in this run"


def model_config():
    from reasonrl import models

    preset = models.get_preset(_PRESET.value)
    overrides = dict(
        dtype=_DTYPE.value,
        attention=_ATTENTION.value,
        remat=_REMAT.value,
        max_position_embeddings=max(preset.max_position_embeddings, _SEQ.value),
    )
    if _Q_BLOCK.value:
        overrides["attention_q_block"] = _Q_BLOCK.value
    if _KV_BLOCK.value:
        overrides["attention_kv_block"] = _KV_BLOCK.value
    return models.get_preset(_PRESET.value, **overrides)


def main(argv):
    del argv
    import jax
    import numpy as np

    from reasonrl import models
    from reasonrl.models.attention import select_implementation

    config = model_config()
    rng = np.random.RandomState(0)
    shape = (_BATCH.value, _SEQ.value)
    tokens = rng.randint(0, config.vocab_size, shape).astype(np.int32)
    targets = rng.randint(0, config.vocab_size, shape).astype(np.int32)
    tokens_per_step = _BATCH.value * _SEQ.value
    device_kind = jax.devices()[0].device_kind
    results = {
        "machine": machine_description(),
        "device_kind": device_kind,
        "preset": _PRESET.value,
        "params": models.num_params(config),
        "dtype": _DTYPE.value,
        "batch": list(shape),
        "attention": select_implementation(
            config, jax.default_backend(), query_len=_SEQ.value, key_len=_SEQ.value, has_cache=False
        ),
        "attention_blocks": [config.attention_q_block, config.attention_kv_block],
        "remat": config.remat,
    }
    memory = {}
    ours_step = reasonrl_step(config, tokens, targets, memory)
    results.update(memory)
    if _COMPILE_ONLY.value:
        report(results, _JSON.value)
        return
    peak, peak_source = peak_flops(device_kind)
    steps = {"reasonrl": ours_step}
    if not _SKIP_HF.value:
        steps["hf"] = transformers_step(config, tokens, targets)
    seconds = median_step_seconds(steps)
    ours = seconds["reasonrl"]
    results["peak_memory_bytes"], results["peak_memory_source"] = peak_memory()
    results["step_seconds"] = ours
    results["reasonrl_tokens_per_s"] = tokens_per_step / ours
    results["peak_flops"] = peak
    results["peak_flops_source"] = peak_source
    results["reasonrl_flops"] = train_flops_per_token(config) * tokens_per_step / ours
    results["mfu"] = results["reasonrl_flops"] / peak
    if not _SKIP_HF.value:
        theirs = seconds["hf"]
        results["hf_tokens_per_s"] = tokens_per_step / theirs
        results["ratio_reasonrl_over_hf"] = theirs / ours
    report(results, _JSON.value)


if __name__ == "__main__":
    app.run(main)
