"""Shared test utilities: tiny random Hugging Face checkpoints made by transformers itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# Tiny configurations covering every family feature: q/k/v bias (qwen2), q/k norm (qwen3),
# llama3 rope scaling, tied and untied heads, GQA, head_dim != hidden / heads.
HF_TINY_CONFIGS = {
    "qwen2": dict(
        model_type="qwen2",
        vocab_size=256,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
    ),
    "qwen3": dict(
        model_type="qwen3",
        vocab_size=256,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=24,
        max_position_embeddings=256,
        rope_theta=1e6,
        tie_word_embeddings=False,
        rms_norm_eps=1e-6,
    ),
    "llama": dict(
        model_type="llama",
        vocab_size=256,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rope_theta=500000.0,
        tie_word_embeddings=False,
        rms_norm_eps=1e-5,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 32,
        },
    ),
    "llama_tied": dict(
        model_type="llama",
        vocab_size=256,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        rms_norm_eps=1e-5,
    ),
}


def make_hf_model(kind: str, seed: int = 0):
    """A transformers model with every weight randomised (norms around 1, biases non-zero)."""
    import torch
    import transformers

    fields = dict(HF_TINY_CONFIGS[kind])
    model_type = fields.pop("model_type")
    config = transformers.AutoConfig.for_model(model_type, **fields)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    if config.tie_word_embeddings:
        model.tie_weights()
    return model.eval()


def save_hf_model(model, directory: Path, **kwargs) -> Path:
    model.save_pretrained(directory, **kwargs)
    return directory


def hf_logits(model, tokens, positions=None) -> np.ndarray:
    import torch

    with torch.no_grad():
        kwargs = {}
        if positions is not None:
            kwargs["position_ids"] = torch.as_tensor(np.asarray(positions), dtype=torch.long)
        out = model(torch.as_tensor(np.asarray(tokens), dtype=torch.long), **kwargs)
    return out.logits.float().numpy()


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def read_jsonl(path: Path) -> list[dict]:
    """Every record of a JSON-lines file (e.g. a stage's metrics.jsonl), in order."""
    with open(path) as f:
        return [json.loads(line) for line in f]


def assert_close_up_to_rounding(actual, expected):
    """Gradients of batches of different shapes differ by float32 rounding of matmuls (relative
    to the leaf's scale); a wrong normalisation would be off by O(1)."""
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4 * scale + 1e-7)


def assert_accumulation_exact(objective_name: str, config, model, params, batch):
    """One batch vs the same batch as 2 micro-batches through the trainer's accumulation:
    equal loss (1e-6), gradients up to rounding and merged metrics (1e-5).

    Returns (whole, split), each (loss_sum, denominator, metrics, grads), for extra checks.
    """
    import jax

    from reasonrl.objectives import get_objective
    from reasonrl.objectives import metrics as metrics_lib
    from reasonrl.train.step import accumulate_gradients

    objective = get_objective(objective_name).fn
    run = jax.jit(
        lambda p, b, accum: accumulate_gradients(
            objective, config, model, p, b, jax.random.key(0), accum
        ),
        static_argnums=2,
    )
    whole, split = run(params, batch, 1), run(params, batch, 2)
    np.testing.assert_allclose(float(split[0] / split[1]), float(whole[0] / whole[1]), rtol=1e-6)
    jax.tree.map(
        lambda a, b: assert_close_up_to_rounding(a / split[1], b / whole[1]), split[3], whole[3]
    )
    merged, full = metrics_lib.compute(split[2]), metrics_lib.compute(whole[2])
    for name in full:
        np.testing.assert_allclose(merged[name], full[name], rtol=1e-5, err_msg=name)
    return whole, split
