"""Model configuration: one frozen dataclass for every supported decoder family.

`ModelConfig` is hashable, so it can be a static argument of `jax.jit`. It converts to and from
Hugging Face `config.json` dictionaries, in both the transformers-4 layout that hub checkpoints
carry (`rope_theta`, `rope_scaling`) and the current one (`rope_parameters`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from reasonrl.errors import ReasonRLError

# Hugging Face `model_type` -> the family flags that distinguish it. Adding a family that differs
# only in these flags is one entry here.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "qwen2": dict(hf_class="Qwen2ForCausalLM", qkv_bias=True, o_bias=False, qk_norm=False),
    "qwen3": dict(hf_class="Qwen3ForCausalLM", qkv_bias=False, o_bias=False, qk_norm=True),
    "llama": dict(hf_class="LlamaForCausalLM", qkv_bias=False, o_bias=False, qk_norm=False),
}

ROPE_TYPES = ("default", "linear", "llama3")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
# `attention`: "auto" picks per backend and shape (`reasonrl.models.attention.select`).
ATTENTION_IMPLEMENTATIONS = ("auto", "blockwise", "dense", "cudnn", "splash")
# `remat`: what a decoder block keeps for the backward pass (see `transformer.REMAT_POLICIES`).
REMAT_POLICIES = ("none", "full", "save_matmul_outputs")


class ConfigError(ReasonRLError, ValueError):
    """A model configuration that cannot be built; the message names the offending field."""


@dataclasses.dataclass(frozen=True)
class RopeScaling:
    """RoPE frequency scaling (`rope_type` "linear" or "llama3", as in Llama 3.1/3.2)."""

    rope_type: str
    factor: float
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Structure and numerics of a decoder-only LM (Qwen2/Qwen2.5, Qwen3, Llama 3.x).

    Attributes:
      architecture: Hugging Face `model_type`: one of `ARCHITECTURES`.
      vocab_size: V, rows of the embedding and the LM head.
      hidden_size: D, width of the residual stream.
      intermediate_size: F, width of the SwiGLU MLP.
      num_layers: L, decoder blocks.
      num_heads: H, query heads.
      num_kv_heads: K, key/value heads (GQA: H % K == 0).
      head_dim: Dh per head (need not equal D / H, e.g. Qwen3).
      rope_theta: RoPE base.
      rope_scaling: optional frequency scaling.
      rms_norm_eps: epsilon of every RMSNorm.
      tie_word_embeddings: LM head reuses the embedding matrix.
      qkv_bias / o_bias: biases on the q/k/v and output projections.
      qk_norm: per-head RMSNorm on queries and keys before RoPE (Qwen3).
      max_position_embeddings: the longest sequence the model supports.
      dtype: compute dtype of matmuls and activations ("float32" or "bfloat16"); norms, softmax
        and logits are always computed in float32.
      param_dtype: dtype parameters are created and stored in.
      remat: what each decoder block keeps for the backward pass: "none" (everything XLA keeps),
        "full" (only the block's input; the block is recomputed) or "save_matmul_outputs"
        (matmul outputs kept, norms / activations / attention recomputed). True and False, the
        older spelling, mean "full" and "none".
      attention: "auto" (the best implementation for the backend and shapes), or one forced:
        "blockwise" (online-softmax tiles, memory linear in T), "dense" (full [T, S] scores),
        "cudnn" (GPU), "splash" (TPU). See `reasonrl.models.attention.select`.
      attention_q_block / attention_kv_block: query and key/value tile sizes of the blockwise
        path (and of the splash kernel).
      bos_token_id / eos_token_ids / pad_token_id: special ids from the checkpoint, if known.
    """

    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | None = None
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False
    max_position_embeddings: int = 4096
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat: str = "none"
    attention: str = "auto"
    attention_q_block: int = 512
    attention_kv_block: int = 512
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int | None = None

    def __post_init__(self):
        if isinstance(self.remat, bool):  # the older boolean flag
            object.__setattr__(self, "remat", "full" if self.remat else "none")
        self.validate()

    # -- validation ---------------------------------------------------------------------------

    def validate(self) -> None:
        """Raises `ConfigError` naming the first inconsistent field."""
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(
                f"architecture={self.architecture!r} is not supported; "
                f"supported: {sorted(ARCHITECTURES)}"
            )
        for name in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "head_dim",
            "max_position_embeddings",
            "attention_q_block",
            "attention_kv_block",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"num_heads={self.num_heads} must be a multiple of num_kv_heads={self.num_kv_heads}"
            )
        for name in ("dtype", "param_dtype"):
            if getattr(self, name) not in DTYPES:
                raise ConfigError(f"{name}={getattr(self, name)!r}; choose from {sorted(DTYPES)}")
        if self.remat not in REMAT_POLICIES:
            raise ConfigError(f"remat={self.remat!r}; choose from {list(REMAT_POLICIES)}")
        if self.attention not in ATTENTION_IMPLEMENTATIONS:
            raise ConfigError(
                f"attention={self.attention!r}; choose from {list(ATTENTION_IMPLEMENTATIONS)}"
            )
        if self.attention == "cudnn" and self.dtype not in ("bfloat16", "float16"):
            raise ConfigError(
                f"attention='cudnn' needs dtype 'bfloat16' or 'float16', got dtype={self.dtype!r}"
            )
        if self.attention == "cudnn" and (self.head_dim % 8 or self.head_dim > 256):
            raise ConfigError(
                f"attention='cudnn' needs head_dim a multiple of 8 and at most 256, "
                f"got head_dim={self.head_dim}"
            )
        if self.rope_scaling is not None and self.rope_scaling.rope_type not in ROPE_TYPES:
            raise ConfigError(
                f"rope_scaling.rope_type={self.rope_scaling.rope_type!r} is not supported; "
                f"supported: {list(ROPE_TYPES)}"
            )

    # -- derived ------------------------------------------------------------------------------

    @property
    def compute_dtype(self):
        return DTYPES[self.dtype]

    @property
    def params_dtype(self):
        return DTYPES[self.param_dtype]

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    # -- Hugging Face interchange -------------------------------------------------------------

    @classmethod
    def from_hf_dict(cls, hf: Mapping[str, Any], *, source: str = "config.json") -> ModelConfig:
        """Builds a config from a Hugging Face `config.json` dictionary (transformers 4 or 5)."""
        model_type = hf.get("model_type")
        if model_type not in ARCHITECTURES:
            supported = ", ".join(
                f"{name} ({flags['hf_class']})" for name, flags in sorted(ARCHITECTURES.items())
            )
            raise ConfigError(
                f"{source}: model_type={model_type!r} (architectures={hf.get('architectures')}) "
                f"is not supported; supported model types: {supported}"
            )
        if hf.get("use_sliding_window"):
            raise ConfigError(f"{source}: use_sliding_window=true is not supported")
        if hf.get("mlp_bias"):
            raise ConfigError(f"{source}: mlp_bias=true is not supported")
        if hf.get("hidden_act", "silu") != "silu":
            raise ConfigError(
                f"{source}: hidden_act={hf['hidden_act']!r}; only 'silu' is supported"
            )
        for key in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
        ):
            if key not in hf:
                raise ConfigError(f"{source}: required field {key!r} is missing")

        rope_theta, rope_scaling = _read_rope(hf, source)
        flags = ARCHITECTURES[model_type]
        num_heads = hf["num_attention_heads"]
        attention_bias = hf.get("attention_bias")
        qkv_bias = flags["qkv_bias"] if model_type == "qwen2" else bool(attention_bias)
        o_bias = bool(attention_bias) if model_type == "llama" else flags["o_bias"]
        eos = hf.get("eos_token_id")
        eos_ids = tuple(eos) if isinstance(eos, (list, tuple)) else (() if eos is None else (eos,))
        return cls(
            architecture=model_type,
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            intermediate_size=hf["intermediate_size"],
            num_layers=hf["num_hidden_layers"],
            num_heads=num_heads,
            num_kv_heads=hf.get("num_key_value_heads") or num_heads,
            head_dim=hf.get("head_dim") or hf["hidden_size"] // num_heads,
            rope_theta=float(rope_theta),
            rope_scaling=rope_scaling,
            rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            qkv_bias=qkv_bias,
            o_bias=o_bias,
            qk_norm=flags["qk_norm"],
            max_position_embeddings=hf.get("max_position_embeddings", 4096),
            bos_token_id=hf.get("bos_token_id"),
            eos_token_ids=eos_ids,
            pad_token_id=hf.get("pad_token_id"),
        )

    def to_hf_dict(self) -> dict[str, Any]:
        """A `config.json` dictionary that transformers loads as the same model.

        Written in the transformers-4 layout (`rope_theta` / `rope_scaling`), which every
        transformers release since 4.43 reads.
        """
        flags = ARCHITECTURES[self.architecture]
        if self.architecture == "qwen2" and not self.qkv_bias:
            raise ConfigError(
                "qwen2 checkpoints always carry q/k/v biases; qkv_bias=False "
                "cannot be expressed in a Qwen2 config.json"
            )
        rope_scaling = None
        if self.rope_scaling is not None:
            rope_scaling = {
                "rope_type": self.rope_scaling.rope_type,
                "factor": self.rope_scaling.factor,
            }
            if self.rope_scaling.rope_type == "llama3":
                rope_scaling.update(
                    low_freq_factor=self.rope_scaling.low_freq_factor,
                    high_freq_factor=self.rope_scaling.high_freq_factor,
                    original_max_position_embeddings=(
                        self.rope_scaling.original_max_position_embeddings
                    ),
                )
        hf = {
            "architectures": [flags["hf_class"]],
            "model_type": self.architecture,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": rope_scaling,
            "tie_word_embeddings": self.tie_word_embeddings,
            "torch_dtype": self.param_dtype,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": (
                list(self.eos_token_ids)
                if len(self.eos_token_ids) > 1
                else (self.eos_token_ids[0] if self.eos_token_ids else None)
            ),
            "pad_token_id": self.pad_token_id,
            "use_cache": True,
        }
        if self.architecture != "qwen2":
            hf["attention_bias"] = self.qkv_bias
        if self.architecture == "llama":
            if self.qkv_bias != self.o_bias:
                raise ConfigError(
                    "llama's attention_bias covers q/k/v and o together; "
                    f"got qkv_bias={self.qkv_bias}, o_bias={self.o_bias}"
                )
            hf["mlp_bias"] = False
        else:
            hf["use_sliding_window"] = False
        return hf


def _read_rope(hf: Mapping[str, Any], source: str) -> tuple[float, RopeScaling | None]:
    """RoPE base and scaling from either config layout."""
    params = hf.get("rope_parameters")
    if isinstance(params, Mapping) and params:
        theta = params.get("rope_theta", hf.get("rope_theta", 10000.0))
        scaling = dict(params)
    else:
        theta = hf.get("rope_theta", 10000.0)
        scaling = dict(hf.get("rope_scaling") or {})
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    if rope_type == "default":
        return theta, None
    if rope_type not in ROPE_TYPES:
        raise ConfigError(
            f"{source}: rope type {rope_type!r} is not supported; supported: {list(ROPE_TYPES)}"
        )
    try:
        if rope_type == "linear":
            return theta, RopeScaling("linear", float(scaling["factor"]))
        return theta, RopeScaling(
            rope_type="llama3",
            factor=float(scaling["factor"]),
            low_freq_factor=float(scaling["low_freq_factor"]),
            high_freq_factor=float(scaling["high_freq_factor"]),
            original_max_position_embeddings=int(scaling["original_max_position_embeddings"]),
        )
    except KeyError as missing:
        raise ConfigError(f"{source}: rope scaling {rope_type!r} lacks field {missing}") from None
