"""A BERT encoder (post-LayerNorm, absolute positions, GELU), as sentence encoders use it.

Shapes: B batch, T length, D hidden, H heads, Dh = D / H, F MLP width, V vocabulary.

Same conventions as the decoder (`reasonrl.models.transformer`): a Flax module whose parameters
carry logical axis names (so `reasonrl.parallel.DEFAULT_RULES` shards them: "embed" over fsdp,
heads and MLP width over tensor), layers stacked with `nn.scan` ([L, ...] leaves), params a plain
dict, and pure functions `bert_param_shardings` / `bert_hidden_states` around it. Only the
encoder is modelled; a checkpoint's pooler (`pooler.dense`) is not read. Loading the Hugging Face
tensors is `reasonrl.models.bert_checkpoint`'s.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from reasonrl.models.config import ConfigError
from reasonrl.models.layers import _MASK_VALUE, ActivationSharding, constrain, logical_param
from reasonrl.parallel.rules import DEFAULT_RULES, Rules, tree_shardings

Array = jax.Array
# Hugging Face `hidden_act` -> activation (HF "gelu" is the exact, erf-based GELU).
ACTIVATIONS = {
    "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "gelu_new": functools.partial(jax.nn.gelu, approximate=True),
    "relu": jax.nn.relu,
}


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Structure of a BERT encoder (hashable: a static argument of jit).

    Attributes:
      vocab_size: V.  hidden_size: D.  intermediate_size: F.  num_layers: L.  num_heads: H.
      max_position_embeddings: rows of the absolute position table (the longest input).
      type_vocab_size: rows of the token-type table (only type 0 is used).
      layer_norm_eps: epsilon of every LayerNorm.
      hidden_act: a key of `ACTIVATIONS`.
      dtype: compute dtype name; LayerNorm and softmax run in float32.
    """

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    dtype: str = "float32"

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @classmethod
    def from_hf_dict(cls, hf: Mapping[str, Any], *, source: str = "config.json") -> BertConfig:
        """The config of a Hugging Face BERT `config.json`; ConfigError names `source`."""
        if hf.get("model_type") != "bert":
            raise ConfigError(f"{source}: model_type {hf.get('model_type')!r} is not 'bert'")
        if hf.get("position_embedding_type", "absolute") != "absolute":
            raise ConfigError(
                f"{source}: position_embedding_type {hf['position_embedding_type']!r} is not "
                f"supported (only 'absolute')"
            )
        if hf.get("hidden_act", "gelu") not in ACTIVATIONS:
            raise ConfigError(
                f"{source}: hidden_act {hf['hidden_act']!r}; supported: {sorted(ACTIVATIONS)}"
            )
        try:
            config = cls(
                vocab_size=int(hf["vocab_size"]),
                hidden_size=int(hf["hidden_size"]),
                intermediate_size=int(hf["intermediate_size"]),
                num_layers=int(hf["num_hidden_layers"]),
                num_heads=int(hf["num_attention_heads"]),
                max_position_embeddings=int(hf.get("max_position_embeddings", 512)),
                type_vocab_size=int(hf.get("type_vocab_size", 2)),
                layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)),
                hidden_act=hf.get("hidden_act", "gelu"),
            )
        except KeyError as error:
            raise ConfigError(f"{source}: missing field {error.args[0]!r}") from None
        if config.hidden_size % config.num_heads:
            raise ConfigError(
                f"{source}: hidden_size {config.hidden_size} is not divisible by "
                f"num_attention_heads {config.num_heads}"
            )
        return config


class LayerNorm(nn.Module):
    """y = (x - mean) / sqrt(var + eps) * scale + bias over the last axis, in float32."""

    eps: float
    dtype: Any

    @nn.compact
    def __call__(self, x: Array) -> Array:
        size = (x.shape[-1],)
        scale = logical_param(self, "scale", nn.initializers.ones, size, ("norm",), jnp.float32)
        bias = logical_param(self, "bias", nn.initializers.zeros, size, ("norm",), jnp.float32)
        x32 = x.astype(jnp.float32)
        mean = jnp.mean(x32, axis=-1, keepdims=True)
        variance = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
        return ((x32 - mean) * jax.lax.rsqrt(variance + self.eps) * scale + bias).astype(self.dtype)


class Dense(nn.Module):
    """x [..., *in] -> [..., *out]: a kernel [*in, *out] with logical axes, plus a bias [*out]."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    in_axes: tuple[str, ...]
    out_axes: tuple[str, ...]
    dtype: Any

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel = logical_param(
            self,
            "kernel",
            nn.initializers.normal(0.02),
            self.in_shape + self.out_shape,
            self.in_axes + self.out_axes,
            jnp.float32,
        )
        bias = logical_param(
            self, "bias", nn.initializers.zeros, self.out_shape, self.out_axes, jnp.float32
        )
        # One 2-D matmul [rows, prod(in)] x [prod(in), prod(out)]: XLA:CPU runs it far faster
        # than a dot with several contracted or batch-like dims; elsewhere the reshapes are free.
        lead = x.shape[: x.ndim - len(self.in_shape)]
        flat = x.reshape(-1, math.prod(self.in_shape))
        y = flat @ kernel.astype(self.dtype).reshape(flat.shape[1], -1)
        return y.reshape(*lead, *self.out_shape) + bias.astype(self.dtype)


class BertLayer(nn.Module):
    """Post-LN block: x = LN(x + attention(x)); x = LN(x + MLP(x))."""

    config: BertConfig
    sharding: ActivationSharding | None = None

    @nn.compact
    def __call__(self, x: Array, mask: Array) -> tuple[Array, None]:
        """x [B, T, D], mask bool [B, T] (False = padding, never attended to) -> [B, T, D]."""
        cfg, dtype = self.config, jnp.dtype(self.config.dtype)
        heads = dict(
            in_shape=(cfg.hidden_size,),
            out_shape=(cfg.num_heads, cfg.head_dim),
            in_axes=("embed",),
            out_axes=("q_heads", "head_dim"),
            dtype=dtype,
        )
        q = Dense(**heads, name="query")(x)  # [B, T, H, Dh]
        k = Dense(**heads, name="key")(x)
        v = Dense(**heads, name="value")(x)
        q = constrain(self.sharding, q, ("batch", "length", "q_heads", "head_dim"))
        # Heads-first [B, H, T, Dh] operands: plain batched matmuls (as in the decoder).
        q, k, v = (t.transpose(0, 2, 1, 3) for t in (q, k, v))
        scores = jnp.einsum("bhtd,bhsd->bhts", q, k, preferred_element_type=jnp.float32)
        scores = jnp.where(mask[:, None, None, :], scores / math.sqrt(cfg.head_dim), _MASK_VALUE)
        probs = jax.nn.softmax(scores, axis=-1).astype(dtype)
        context = jnp.einsum("bhts,bhsd->bhtd", probs, v).transpose(0, 2, 1, 3)
        attended = Dense(
            (cfg.num_heads, cfg.head_dim),
            (cfg.hidden_size,),
            ("q_heads", "head_dim"),
            ("embed",),
            dtype,
            name="attention_output",
        )(context)
        x = LayerNorm(cfg.layer_norm_eps, dtype, name="attention_norm")(x + attended)
        intermediate = Dense(
            (cfg.hidden_size,),
            (cfg.intermediate_size,),
            ("embed",),
            ("mlp",),
            dtype,
            name="intermediate",
        )
        hidden = ACTIVATIONS[cfg.hidden_act](intermediate(x))
        hidden = constrain(self.sharding, hidden, ("batch", "length", "mlp"))
        out = Dense(
            (cfg.intermediate_size,), (cfg.hidden_size,), ("mlp",), ("embed",), dtype, name="output"
        )(hidden)
        x = LayerNorm(cfg.layer_norm_eps, dtype, name="output_norm")(x + out)
        return constrain(self.sharding, x, ("batch", "length", "activation_embed")), None


class BertEncoder(nn.Module):
    """Embeddings (word + absolute position + token type 0, then LayerNorm) and L layers."""

    config: BertConfig
    sharding: ActivationSharding | None = None

    @nn.compact
    def __call__(self, tokens: Array, mask: Array) -> Array:
        """tokens int32 [B, T], mask bool [B, T] -> final hidden states [B, T, D]."""
        cfg, dtype = self.config, jnp.dtype(self.config.dtype)
        table = functools.partial(logical_param, self, init=nn.initializers.normal(0.02))
        words = table(
            name="word_embeddings",
            shape=(cfg.vocab_size, cfg.hidden_size),
            axes=("vocab", "embed"),
            dtype=jnp.float32,
        )
        positions = table(
            name="position_embeddings",
            shape=(cfg.max_position_embeddings, cfg.hidden_size),
            axes=("length", "embed"),
            dtype=jnp.float32,
        )
        token_types = table(
            name="token_type_embeddings",
            shape=(cfg.type_vocab_size, cfg.hidden_size),
            axes=(None, "embed"),
            dtype=jnp.float32,
        )
        x = jnp.take(words, tokens, axis=0) + positions[None, : tokens.shape[1]] + token_types[0]
        x = LayerNorm(cfg.layer_norm_eps, dtype, name="embedding_norm")(x.astype(dtype))
        x = constrain(self.sharding, x, ("batch", "length", "activation_embed"))
        layers = nn.scan(
            BertLayer,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=nn.broadcast,
            length=cfg.num_layers,
            metadata_params={nn.PARTITION_NAME: "layers"},
        )(cfg, self.sharding, name="layers")
        x, _ = layers(x, mask)
        return x


def _boxed_abstract(config: BertConfig):
    dummy = jax.ShapeDtypeStruct((1, 1), jnp.int32)
    return jax.eval_shape(
        lambda tokens: BertEncoder(config).init(jax.random.key(0), tokens, tokens > 0), dummy
    )["params"]


@functools.lru_cache(maxsize=16)
def bert_param_shapes(config: BertConfig) -> dict:
    """Pytree of jax.ShapeDtypeStruct, one per parameter (stacked leaves [L, ...])."""
    return nn.meta.unbox(_boxed_abstract(config))


@functools.lru_cache(maxsize=16)
def bert_param_logical_axes(config: BertConfig) -> dict:
    """Pytree of logical axis-name tuples, e.g. ("layers", "embed", "q_heads", "head_dim")."""
    specs = nn.get_partition_spec(_boxed_abstract(config))
    return jax.tree.map(tuple, specs, is_leaf=lambda x: isinstance(x, PartitionSpec))


def bert_param_shardings(config: BertConfig, mesh: Mesh, rules: Rules = DEFAULT_RULES) -> dict:
    """NamedSharding of every parameter on `mesh`, by the one rules table."""
    return tree_shardings(bert_param_logical_axes(config), bert_param_shapes(config), mesh, rules)


def init_bert_params(config: BertConfig, rng: Array) -> dict:
    """Fresh random parameters (tests and benchmarks; real weights come from a checkpoint)."""
    tokens = jnp.zeros((1, 1), jnp.int32)
    return nn.meta.unbox(BertEncoder(config).init(rng, tokens, tokens == 0)["params"])


def bert_hidden_states(
    config: BertConfig,
    params: dict,
    tokens: Array,
    mask: Array,
    *,
    sharding: ActivationSharding | None = None,
) -> Array:
    """Traceable: hidden states [B, T, D] of tokens int32 [B, T] with mask bool [B, T]."""
    return BertEncoder(config, sharding).apply({"params": params}, tokens, mask)


def num_bert_params(config: BertConfig) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(bert_param_shapes(config)))
