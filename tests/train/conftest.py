import itertools

import pytest

from reasonrl import data as data_lib
from reasonrl.paths import asset
from reasonrl.train import stage_config

TINY_MODEL = dict(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                  num_kv_heads=2, head_dim=8, max_position_embeddings=128)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """300 GSM8K documents (blank-line separated) and a sentencepiece tokenizer trained on them."""
    directory = tmp_path_factory.mktemp("corpus")
    text = asset("corpus", "gsm8k_train.txt").read_text()
    docs = list(itertools.islice((d for d in text.split("\n\n") if d.strip()), 300))
    corpus = directory / "corpus.txt"
    corpus.write_text("\n\n".join(docs) + "\n")
    model_path = data_lib.train_sentencepiece(str(corpus), str(directory / "tok"), vocab_size=400)
    return corpus, model_path


def tiny_stage(corpus_path, **train_overrides):
    stage = stage_config()
    stage.model.preset = "tiny-qwen3"
    stage.model.overrides = TINY_MODEL
    stage.data = dict(source=dict(type="text", path=str(corpus_path), split="blank_line"),
                      task=dict(type="pretrain"), packing=dict(type="concat_then_split"),
                      read_threads=0)
    stage.optimizer.update(learning_rate=1e-2, warmup_steps=2)
    stage.train.update(steps=12, batch_size=8, seq_len=64, log_every=1, checkpoint_every=3,
                       keep_checkpoints=5, export_hf=True)
    stage.train.update(**train_overrides)
    return stage
