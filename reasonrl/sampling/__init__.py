"""Autoregressive sampling with a KV cache: greedy, temperature, top-k, top-p, many samples per
prompt from one prefill, stop tokens, sharded over the params' mesh.

`complete` (:mod:`~reasonrl.sampling.completions`) is the path RL rollouts, the evals and
distillation sample through: prompts that do not fit, decoding, grading.
:mod:`~reasonrl.sampling.problem_runs` samples a problem set in fixed, reproducible batches and
:mod:`~reasonrl.sampling.run_store` keeps such a run resumable.
"""

from reasonrl.sampling.completions import (
    PROMPT_TOO_LONG,
    TRUNCATE_PROMPT_CHOICES,
    Completions,
    complete,
    grade_completions,
)
from reasonrl.sampling.filters import (
    SampledTokens,
    filter_logits,
    row_keys,
    sample_tokens,
    sampling_distribution,
    token_logprobs,
)
from reasonrl.sampling.generate import (
    GenerationResult,
    TextGenerationResult,
    generate,
    generate_text,
)
from reasonrl.sampling.prompt_block import bucket_length

__all__ = [
    "Completions",
    "GenerationResult",
    "PROMPT_TOO_LONG",
    "SampledTokens",
    "TRUNCATE_PROMPT_CHOICES",
    "TextGenerationResult",
    "bucket_length",
    "complete",
    "filter_logits",
    "generate",
    "generate_text",
    "grade_completions",
    "row_keys",
    "sample_tokens",
    "sampling_distribution",
    "token_logprobs",
]
