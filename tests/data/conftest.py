"""Fixtures for the data tests: two tiny tokenizers built locally, once per session.

* `sp_tokenizer`: a SentencePiece BPE model trained (with reasonrl's trainer) on the first
  documents of the vendored GSM8K text.
* `hf_tokenizer_dir`: a byte-level BPE `tokenizer.json` trained with the `tokenizers` library
  on the same text, with the chatml and llama3 special tokens added, plus a
  `tokenizer_config.json` naming eos/pad and carrying a ChatML Jinja template.
"""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from reasonrl.data import HFTokenizer, SentencePieceTokenizer, train_sentencepiece  # noqa: E402
from tests.data.helpers import CHATML_JINJA, HF_SPECIAL_TOKENS, gsm8k_documents  # noqa: E402


@pytest.fixture(scope="session")
def sp_model_path(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("sp_tokenizer")
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(gsm8k_documents(400)), encoding="utf-8")
    return train_sentencepiece(str(corpus), str(directory), vocab_size=512, num_threads=1)


@pytest.fixture(scope="session")
def sp_tokenizer(sp_model_path) -> SentencePieceTokenizer:
    return SentencePieceTokenizer(sp_model_path)


@pytest.fixture(scope="session")
def hf_tokenizer_dir(tmp_path_factory) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    directory = tmp_path_factory.mktemp("hf_tokenizer")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=HF_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(gsm8k_documents(400), trainer)
    tokenizer.save(str(directory / "tokenizer.json"))
    config = {
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": {"content": "<|endoftext|>", "special": True},
        "chat_template": CHATML_JINJA,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return str(directory)


@pytest.fixture(scope="session")
def hf_tokenizer(hf_tokenizer_dir) -> HFTokenizer:
    return HFTokenizer(os.path.join(hf_tokenizer_dir, "tokenizer.json"))


@pytest.fixture(scope="session", params=["sentencepiece", "huggingface"])
def any_tokenizer(request):
    """Each test using this runs once per tokenizer kind."""
    return request.getfixturevalue(
        {"sentencepiece": "sp_tokenizer", "huggingface": "hf_tokenizer"}[request.param]
    )
