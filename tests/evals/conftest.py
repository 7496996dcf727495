"""Tiny random checkpoints (tiny-qwen3, vocabulary = a sentencepiece model trained here)."""

import shutil

import jax
import pytest

from reasonrl import data as data_lib
from reasonrl import models

# Few enough positions that some MATH-500 prompts (plus max_new_tokens) do not fit.
SHORT_CONTEXT = 160


def _checkpoint(directory, model_file, max_position_embeddings):
    tokenizer = data_lib.load_tokenizer(model_file)
    config = models.get_preset(
        "tiny-qwen3",
        vocab_size=tokenizer.vocab_size,
        num_layers=1,
        max_position_embeddings=max_position_embeddings,
    )
    params = models.init_params(config, jax.random.key(0))
    checkpoint = directory / "checkpoint"
    models.save_hf_checkpoint(config, params, checkpoint)
    shutil.copy(model_file, checkpoint / "tokenizer.model")
    return checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_corpus):
    """A Hugging Face checkpoint directory with `tokenizer.model` copied in."""
    return _checkpoint(tmp_path_factory.mktemp("eval_ckpt"), tiny_corpus[1], 4096)


@pytest.fixture(scope="session")
def short_context_checkpoint(tmp_path_factory, tiny_corpus):
    """As `tiny_checkpoint` (same weights), with max_position_embeddings=SHORT_CONTEXT."""
    return _checkpoint(tmp_path_factory.mktemp("short_ckpt"), tiny_corpus[1], SHORT_CONTEXT)
