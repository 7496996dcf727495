"""Model presets by name: the real released sizes and tiny sizes for tests and demos.

The real presets reproduce the published `config.json` of each base model, so a preset and the
checkpoint it names build the same parameter tree. `get_preset("qwen2.5-0.5b", dtype="bfloat16")`
overrides any field.
"""

from __future__ import annotations

from reasonrl.models.config import ModelConfig, RopeScaling

_QWEN2_EOS = (151643,)
_LLAMA3_ROPE_1B = RopeScaling("llama3", 32.0, 1.0, 4.0, 8192)
_LLAMA3_ROPE_8B = RopeScaling("llama3", 8.0, 1.0, 4.0, 8192)

PRESETS: dict[str, ModelConfig] = {
    "qwen2.5-0.5b": ModelConfig(
        "qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864, num_layers=24,
        num_heads=14, num_kv_heads=2, head_dim=64, rope_theta=1e6, tie_word_embeddings=True,
        qkv_bias=True, max_position_embeddings=32768, bos_token_id=151643,
        eos_token_ids=_QWEN2_EOS),
    "qwen2.5-1.5b": ModelConfig(
        "qwen2", vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_layers=28,
        num_heads=12, num_kv_heads=2, head_dim=128, rope_theta=1e6, tie_word_embeddings=True,
        qkv_bias=True, max_position_embeddings=131072, bos_token_id=151643,
        eos_token_ids=_QWEN2_EOS),
    "qwen2.5-7b": ModelConfig(
        "qwen2", vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_layers=28,
        num_heads=28, num_kv_heads=4, head_dim=128, rope_theta=1e6, tie_word_embeddings=False,
        qkv_bias=True, max_position_embeddings=131072, bos_token_id=151643,
        eos_token_ids=_QWEN2_EOS),
    "qwen2.5-math-1.5b": ModelConfig(
        "qwen2", vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_layers=28,
        num_heads=12, num_kv_heads=2, head_dim=128, rope_theta=10000.0, tie_word_embeddings=True,
        qkv_bias=True, max_position_embeddings=4096, bos_token_id=151643,
        eos_token_ids=_QWEN2_EOS),
    "qwen3-0.6b": ModelConfig(
        "qwen3", vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_layers=28,
        num_heads=16, num_kv_heads=8, head_dim=128, rope_theta=1e6, tie_word_embeddings=True,
        qk_norm=True, max_position_embeddings=40960, bos_token_id=151643,
        eos_token_ids=_QWEN2_EOS),
    "qwen3-1.7b": ModelConfig(
        "qwen3", vocab_size=151936, hidden_size=2048, intermediate_size=6144, num_layers=28,
        num_heads=16, num_kv_heads=8, head_dim=128, rope_theta=1e6, tie_word_embeddings=True,
        qk_norm=True, max_position_embeddings=40960, bos_token_id=151643,
        eos_token_ids=_QWEN2_EOS),
    "llama3.2-1b": ModelConfig(
        "llama", vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_layers=16,
        num_heads=32, num_kv_heads=8, head_dim=64, rope_theta=500000.0,
        rope_scaling=_LLAMA3_ROPE_1B, rms_norm_eps=1e-5, tie_word_embeddings=True,
        max_position_embeddings=131072, bos_token_id=128000, eos_token_ids=(128001,)),
    "llama3.1-8b": ModelConfig(
        "llama", vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_layers=32,
        num_heads=32, num_kv_heads=8, head_dim=128, rope_theta=500000.0,
        rope_scaling=_LLAMA3_ROPE_8B, rms_norm_eps=1e-5, tie_word_embeddings=False,
        max_position_embeddings=131072, bos_token_id=128000, eos_token_ids=(128001,)),
    # Tiny sizes: unit tests, notebooks and the CPU demo.
    "tiny-qwen2": ModelConfig(
        "qwen2", vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2,
        num_heads=4, num_kv_heads=2, head_dim=16, rope_theta=10000.0, qkv_bias=True,
        tie_word_embeddings=True, max_position_embeddings=512),
    "tiny-qwen3": ModelConfig(
        "qwen3", vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2,
        num_heads=4, num_kv_heads=2, head_dim=32, rope_theta=10000.0, qk_norm=True,
        tie_word_embeddings=False, max_position_embeddings=512),
    "tiny-llama": ModelConfig(
        "llama", vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2,
        num_heads=4, num_kv_heads=2, head_dim=16, rope_theta=500000.0,
        rope_scaling=RopeScaling("llama3", 8.0, 1.0, 4.0, 64), rms_norm_eps=1e-5,
        max_position_embeddings=512),
    # ~20M parameters: the size benchmarks and the CPU demo train at.
    "small-20m": ModelConfig(
        "qwen3", vocab_size=8192, hidden_size=384, intermediate_size=1024, num_layers=8,
        num_heads=6, num_kv_heads=2, head_dim=64, rope_theta=10000.0, qk_norm=True,
        tie_word_embeddings=True, max_position_embeddings=2048),
}


def get_preset(name: str, **overrides) -> ModelConfig:
    """The preset called `name`, with any field overridden (e.g. `dtype="bfloat16"`)."""
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; available: {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]
