"""Decoder-only LMs (Qwen2/2.5, Qwen3, Llama 3.x) as pure functions of (config, params)."""

from reasonrl.models.api import (
    InputError,
    build_model,
    default_positions,
    forward,
    hidden_states,
    init_params,
    logits_from_hidden,
    make_forward,
    mesh_of,
    num_params,
    param_logical_axes,
    param_shapes,
    param_shardings,
    validate_tokens,
)
from reasonrl.models.config import ARCHITECTURES, ConfigError, ModelConfig, RopeScaling
from reasonrl.models.hf_checkpoint import (
    CheckpointError,
    load_hf_checkpoint,
    read_hf_config,
    save_hf_checkpoint,
)
from reasonrl.models.presets import PRESETS, get_preset
from reasonrl.models.transformer import CausalLM, KVCache

__all__ = [
    "ARCHITECTURES",
    "CausalLM",
    "CheckpointError",
    "ConfigError",
    "InputError",
    "KVCache",
    "ModelConfig",
    "PRESETS",
    "RopeScaling",
    "build_model",
    "default_positions",
    "forward",
    "get_preset",
    "hidden_states",
    "init_params",
    "load_hf_checkpoint",
    "logits_from_hidden",
    "make_forward",
    "mesh_of",
    "num_params",
    "param_logical_axes",
    "param_shapes",
    "param_shardings",
    "read_hf_config",
    "save_hf_checkpoint",
    "validate_tokens",
]
