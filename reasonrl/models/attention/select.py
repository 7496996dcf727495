"""Which attention implementation runs, from the backend, the config and the shapes.

`select_implementation` is a pure function of its arguments (the backend is passed in, not
read), so the choice for every backend is testable on a CPU-only machine.

| `ModelConfig.attention` | without a KV cache (training, scoring)      | with a cache (sampler)  |
| ----------------------- | ------------------------------------------- | ----------------------- |
| "auto"                  | gpu: "cudnn" if its constraints hold;        | "dense" when the query  |
|                         | tpu: "splash" if its constraints hold;       | fits one block (decode  |
|                         | otherwise "blockwise" ("dense" when the      | steps, short prompts),  |
|                         | whole input is one block)                    | else "blockwise"        |
| "blockwise"             | "blockwise" ("dense" for a single block)     | same as "auto"          |
| "dense"                 | "dense" (materialises [B, H, T, S] scores)   | "dense"                 |
| "cudnn" / "splash"      | that kernel, or an error naming the reason   | same as "auto"          |

A single block is computed identically by both paths (one tile, one softmax), so "dense" there
only drops the loop. Kernels serve self-attention without a cache; the sampler's prefill and
decode use the XLA paths with any setting.
"""

from __future__ import annotations

from reasonrl.models.config import ConfigError, ModelConfig

KERNEL_BACKENDS = {"cudnn": "gpu", "splash": "tpu"}
CUDNN_DTYPES = ("bfloat16", "float16")
SPLASH_LANES = 128  # splash's key/value tiles are multiples of the TPU lane width


def cudnn_unsupported(config: ModelConfig, query_len: int, key_len: int) -> str | None:
    """Why cuDNN flash attention cannot run this config and shape, or None if it can.

    Constraints of `jax.nn.dot_product_attention(implementation="cudnn")` (jax 0.10): float16 or
    bfloat16 inputs, head dim a multiple of 8 and at most 128 (256 on Hopper and later; "auto"
    uses the portable bound), and self-attention (T == S).
    """
    if config.dtype not in CUDNN_DTYPES:
        return f"dtype={config.dtype!r}; cuDNN flash attention needs one of {CUDNN_DTYPES}"
    if config.head_dim % 8 or config.head_dim > 256:
        return f"head_dim={config.head_dim}; cuDNN needs a multiple of 8, at most 256"
    if query_len != key_len:
        return f"query length {query_len} != key length {key_len}; only self-attention"
    return None


def splash_unsupported(config: ModelConfig, query_len: int, key_len: int) -> str | None:
    """Why the Pallas splash-attention TPU kernel cannot run this shape, or None if it can.

    Tiles are min(block, T) with key/value tiles multiples of 128 lanes, so T must be a
    multiple of 128 and of both tiles; self-attention only (T == S).
    """
    if query_len != key_len:
        return f"query length {query_len} != key length {key_len}; only self-attention"
    bq, bk = splash_blocks(config, query_len)
    if query_len % SPLASH_LANES or bk % SPLASH_LANES or query_len % bq or query_len % bk:
        return (
            f"sequence length {query_len} with tiles ({bq}, {bk}) from attention_q_block / "
            f"attention_kv_block; splash needs T and both tiles to be multiples of "
            f"{SPLASH_LANES} that divide T"
        )
    return None


def splash_blocks(config: ModelConfig, length: int) -> tuple[int, int]:
    """(q tile, kv tile) the splash kernel uses for sequences of `length` tokens."""
    return min(config.attention_q_block, length), min(config.attention_kv_block, length)


_UNSUPPORTED = {"cudnn": cudnn_unsupported, "splash": splash_unsupported}


def _xla_choice(config: ModelConfig, query_len: int, key_len: int, has_cache: bool) -> str:
    one_query_block = query_len <= config.attention_q_block
    if one_query_block and (has_cache or key_len <= config.attention_kv_block):
        return "dense"
    return "blockwise"


def select_implementation(
    config: ModelConfig, backend: str, *, query_len: int, key_len: int, has_cache: bool
) -> str:
    """ "dense", "blockwise", "cudnn" or "splash" for one attention call.

    Args:
      config: reads `attention`, `attention_q_block`, `attention_kv_block`, `dtype`, `head_dim`.
      backend: `jax.default_backend()` ("cpu", "gpu", "tpu", ...).
      query_len: T, tokens in this block; key_len: S, keys attended to (cache slots + T).
      has_cache: the call reads a KV cache (sampler prefill / decode).

    Raises:
      ConfigError naming `attention` when a forced kernel cannot run here (wrong backend,
      dtype, head dim or sequence length).
    """
    requested = config.attention
    if requested == "dense":
        return "dense"
    if has_cache or requested == "blockwise":
        return _xla_choice(config, query_len, key_len, has_cache)
    if requested in KERNEL_BACKENDS:
        if backend != KERNEL_BACKENDS[requested]:
            raise ConfigError(
                f"attention={requested!r} needs the {KERNEL_BACKENDS[requested]!r} backend; "
                f"this process runs on {backend!r} (use 'auto')"
            )
        reason = _UNSUPPORTED[requested](config, query_len, key_len)
        if reason is not None:
            raise ConfigError(f"attention={requested!r} cannot run: {reason}")
        return requested
    for kernel, kernel_backend in KERNEL_BACKENDS.items():
        if backend == kernel_backend and _UNSUPPORTED[kernel](config, query_len, key_len) is None:
            if kernel != "cudnn" or config.head_dim <= 128:
                return kernel
    return _xla_choice(config, query_len, key_len, has_cache)
