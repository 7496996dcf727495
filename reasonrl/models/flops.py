"""FLOP counts of the decoder, for compute-matched comparisons and utilisation figures.

A forward pass costs, per token that attends to `context` tokens,

    2 N  +  4 L H Dh context

where N counts the matmul parameters (all parameters except the embedding lookup, plus the LM
head when it is tied to the embedding) and the second term is the attention scores (QKᵀ) and
the weighted sum of values, each 2 H Dh context per layer. Training (forward + backward) is 3×
a forward. Norms, activations, softmax and RoPE are left out (they are O(D) per token).
"""

from __future__ import annotations

from reasonrl.models.api import num_params
from reasonrl.models.config import ModelConfig


def matmul_params(config: ModelConfig) -> int:
    """N: the parameters a token's forward pass multiplies by."""
    embedding = config.vocab_size * config.hidden_size
    return num_params(config) - (0 if config.tie_word_embeddings else embedding)


def forward_flops_per_token(config: ModelConfig, context: float) -> float:
    """Forward FLOPs of one token attending to `context` tokens (see the module docstring)."""
    attention = 4 * config.num_layers * config.num_heads * config.head_dim * context
    return 2.0 * matmul_params(config) + attention


def forward_flops(config: ModelConfig, rows: int, length: int) -> float:
    """Forward FLOPs of `rows` full sequences of `length` tokens (causal: a token attends to
    (length + 1) / 2 tokens on average)."""
    return rows * length * forward_flops_per_token(config, (length + 1) / 2)


def train_flops(config: ModelConfig, rows: int, length: int) -> float:
    """Forward + backward FLOPs of `rows` sequences of `length` tokens: 3× the forward."""
    return 3.0 * forward_flops(config, rows, length)
