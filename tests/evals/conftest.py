"""A tiny random checkpoint (tiny-qwen3, vocabulary = a sentencepiece model trained here)."""

import itertools
import shutil

import jax
import pytest

from reasonrl import data as data_lib
from reasonrl import models
from reasonrl.paths import asset


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A Hugging Face checkpoint directory with `tokenizer.model` copied in."""
    directory = tmp_path_factory.mktemp("eval_ckpt")
    text = asset("corpus", "gsm8k_train.txt").read_text()
    docs = list(itertools.islice((d for d in text.split("\n\n") if d.strip()), 300))
    corpus = directory / "corpus.txt"
    corpus.write_text("\n\n".join(docs) + "\n")
    model_file = data_lib.train_sentencepiece(str(corpus), str(directory / "tok"),
                                              vocab_size=400)
    tokenizer = data_lib.load_tokenizer(model_file)
    config = models.get_preset("tiny-qwen3", vocab_size=tokenizer.vocab_size, num_layers=1,
                               max_position_embeddings=4096)
    params = models.init_params(config, jax.random.key(0))
    checkpoint = directory / "checkpoint"
    models.save_hf_checkpoint(config, params, checkpoint)
    shutil.copy(model_file, checkpoint / "tokenizer.model")
    return checkpoint
