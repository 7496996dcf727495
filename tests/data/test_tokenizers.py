"""Tokenizer implementations, loading by path, and the train_tokenizer command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from reasonrl.data import (
    CHAT_SPECIAL_TOKENS,
    HFTokenizer,
    MissingSpecialTokenError,
    SentencePieceTokenizer,
    load_tokenizer,
    train_sentencepiece,
)
from reasonrl.data.spec import SpecError
from reasonrl.data.tokenizer.training import special_tokens
from tests.data.helpers import HF_SPECIAL_TOKENS, gsm8k_documents

SAMPLES = [
    "Natalia sold 48/2 = 24 clips in May.\n#### 72",
    "  two leading spaces,\ttabs\tand trailing spaces  ",
    "Unicode: café, naïve, 数学, emoji 🙂",
    "special inline <|im_end|> token",
    "",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_encode_decode_round_trip(any_tokenizer, text):
    ids = any_tokenizer.encode(text)
    assert all(0 <= i < any_tokenizer.vocab_size for i in ids)
    assert any_tokenizer.decode(ids) == text


def test_special_tokens_are_single_ids(any_tokenizer):
    for token in CHAT_SPECIAL_TOKENS:
        token_id = any_tokenizer.special_token_id(token)
        assert any_tokenizer.encode(token) == [token_id]
        assert any_tokenizer.decode([token_id]) == token


def test_missing_special_token_names_the_token(any_tokenizer):
    assert any_tokenizer.token_to_id("<|not_a_token|>") is None
    with pytest.raises(MissingSpecialTokenError, match=r"<\|not_a_token\|>.*required by me"):
        any_tokenizer.special_token_id("<|not_a_token|>", required_by="me")


def test_sentencepiece_special_ids(sp_tokenizer):
    assert (sp_tokenizer.bos_id, sp_tokenizer.eos_id, sp_tokenizer.pad_id) == (1, 2, 3)
    assert sp_tokenizer.vocab_size == 512
    ids = sp_tokenizer.encode("hello", add_bos=True, add_eos=True)
    assert ids[0] == 1 and ids[-1] == 2 and ids[1:-1] == sp_tokenizer.encode("hello")


def test_hf_roles_come_from_tokenizer_config(hf_tokenizer):
    assert hf_tokenizer.bos_id is None
    assert hf_tokenizer.eos_id == hf_tokenizer.token_to_id("<|im_end|>")
    assert hf_tokenizer.pad_id == hf_tokenizer.token_to_id("<|endoftext|>")
    assert hf_tokenizer.chat_template_name == "chatml"
    with pytest.raises(MissingSpecialTokenError, match="no bos token"):
        hf_tokenizer.encode("x", add_bos=True)


def test_hf_without_config_has_no_roles(hf_tokenizer_dir, tmp_path):
    shutil.copy(os.path.join(hf_tokenizer_dir, "tokenizer.json"), tmp_path / "tokenizer.json")
    tokenizer = HFTokenizer(str(tmp_path / "tokenizer.json"))
    assert (tokenizer.bos_id, tokenizer.eos_id, tokenizer.declared_pad_id) == (None, None, None)
    assert tokenizer.pad_id == 0
    assert tokenizer.chat_template_name is None


def test_hf_encode_matches_transformers(hf_tokenizer_dir, hf_tokenizer):
    transformers = pytest.importorskip("transformers")
    reference = transformers.PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(hf_tokenizer_dir, "tokenizer.json")
    )
    texts = SAMPLES + gsm8k_documents(20)
    for text in texts:
        expected = reference.encode(text, add_special_tokens=False)
        assert hf_tokenizer.encode(text) == expected, text
        assert hf_tokenizer.decode(expected) == reference.decode(expected)
    assert hf_tokenizer.vocab_size == len(reference)


def test_load_tokenizer_picks_implementation(sp_model_path, hf_tokenizer_dir, tmp_path):
    assert isinstance(load_tokenizer(sp_model_path), SentencePieceTokenizer)
    assert isinstance(load_tokenizer(os.path.dirname(sp_model_path)), SentencePieceTokenizer)
    hf_json = os.path.join(hf_tokenizer_dir, "tokenizer.json")
    assert isinstance(load_tokenizer(hf_json), HFTokenizer)
    assert isinstance(load_tokenizer(hf_tokenizer_dir), HFTokenizer)
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        load_tokenizer(str(tmp_path))
    (tmp_path / "vocab.txt").write_text("a\n")
    with pytest.raises(ValueError, match="cannot tell the tokenizer type"):
        load_tokenizer(str(tmp_path / "vocab.txt"))


def test_hf_special_token_list_covers_templates():
    assert set(CHAT_SPECIAL_TOKENS) <= set(HF_SPECIAL_TOKENS)


def test_train_tokenizer_command(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(gsm8k_documents(150)), encoding="utf-8")
    output = tmp_path / "tok"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "reasonrl.data.train_tokenizer",
            f"--input={corpus}",
            "--vocab_size=400",
            f"--output={output}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    tokenizer = load_tokenizer(str(output))
    assert tokenizer.vocab_size == 400
    text = "<|im_start|>user\nJanet has 3 apples.<|im_end|>\n"
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.encode("<|im_start|>") == [tokenizer.special_token_id("<|im_start|>")]


@pytest.mark.parametrize(
    "vocab_size, message",
    [
        (100, r"vocab_size: 100 is below the \d+ pieces .*corpus.txt.* needs .*set it >= \d+"),
        (5000, r"vocab_size: 5000 is more pieces than .*corpus.txt.* can yield; set it <= \d+"),
    ],
)
def test_a_vocab_size_that_does_not_fit_the_corpus_names_the_size_that_would(
    tmp_path, vocab_size, message
):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("12+34=46\n7+8=15\n", encoding="utf-8")
    with pytest.raises(SpecError, match=message):
        train_sentencepiece(str(corpus), str(tmp_path / "tok"), vocab_size)


def test_thinking_markers_are_single_ids_when_asked(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(gsm8k_documents(50)), encoding="utf-8")
    plain = load_tokenizer(train_sentencepiece(str(corpus), str(tmp_path / "plain"), 400))
    marked = load_tokenizer(
        train_sentencepiece(
            str(corpus), str(tmp_path / "marked"), 400, special_tokens=special_tokens(True)
        )
    )
    for marker in ("<think>", "</think>"):
        assert marked.encode(marker) == [marked.special_token_id(marker)]
        assert len(plain.encode(marker)) > 1
