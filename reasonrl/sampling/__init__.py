"""Autoregressive sampling with a KV cache: greedy, temperature, top-k, top-p, many samples per
prompt from one prefill, stop tokens, sharded over the params' mesh."""

from reasonrl.sampling.filters import (SampledTokens, filter_logits, row_keys, sample_tokens,
                                       sampling_distribution, token_logprobs)
from reasonrl.sampling.generate import (GenerationResult, TextGenerationResult, generate,
                                        generate_text)
from reasonrl.sampling.prompt_block import bucket_length

__all__ = [
    "GenerationResult", "SampledTokens", "TextGenerationResult", "bucket_length",
    "filter_logits", "generate", "generate_text", "row_keys", "sample_tokens",
    "sampling_distribution", "token_logprobs",
]
