"""A tiny random checkpoint (tiny-qwen3, vocabulary = a sentencepiece model trained here)."""

import shutil

import jax
import pytest

from reasonrl import data as data_lib
from reasonrl import models


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_corpus):
    """A Hugging Face checkpoint directory with `tokenizer.model` copied in."""
    directory = tmp_path_factory.mktemp("eval_ckpt")
    _, model_file = tiny_corpus
    tokenizer = data_lib.load_tokenizer(model_file)
    config = models.get_preset("tiny-qwen3", vocab_size=tokenizer.vocab_size, num_layers=1,
                               max_position_embeddings=4096)
    params = models.init_params(config, jax.random.key(0))
    checkpoint = directory / "checkpoint"
    models.save_hf_checkpoint(config, params, checkpoint)
    shutil.copy(model_file, checkpoint / "tokenizer.model")
    return checkpoint
