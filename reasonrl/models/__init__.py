"""Decoder-only LMs (Qwen2/2.5, Qwen3, Llama 3.x) as pure functions of (config, params), and a
BERT sentence encoder (`SentenceEncoder`: all-MiniLM-L6-v2 and other BERT-style directories)."""

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
from reasonrl.models.bert import BertConfig, bert_hidden_states, init_bert_params
from reasonrl.models.bert_checkpoint import load_bert_checkpoint
from reasonrl.models.config import ARCHITECTURES, ConfigError, ModelConfig, RopeScaling
from reasonrl.models.encoder import (
    EncoderNotFoundError,
    SentenceEncoder,
    default_encoder_directory,
)
from reasonrl.models.hf_checkpoint import (
    CheckpointError,
    load_hf_checkpoint,
    read_hf_config,
    save_hf_checkpoint,
)
from reasonrl.models.presets import PRESETS, get_preset
from reasonrl.models.transformer import CausalLM, KVCache, SlotCache

__all__ = [
    "ARCHITECTURES",
    "BertConfig",
    "CausalLM",
    "CheckpointError",
    "ConfigError",
    "EncoderNotFoundError",
    "InputError",
    "KVCache",
    "SlotCache",
    "ModelConfig",
    "PRESETS",
    "RopeScaling",
    "SentenceEncoder",
    "bert_hidden_states",
    "build_model",
    "default_encoder_directory",
    "default_positions",
    "forward",
    "get_preset",
    "hidden_states",
    "init_bert_params",
    "init_params",
    "load_bert_checkpoint",
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
