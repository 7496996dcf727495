"""Training SentencePiece tokenizers that work with the built-in chat templates.

The command-line entry point is `python -m reasonrl.data.train_tokenizer` (see there).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sentencepiece

from reasonrl.data.spec import SpecError
from reasonrl.data.tokenizer.chat_templates import CHAT_TEMPLATES

MODEL_BASENAME = "tokenizer"
CHAT_SPECIAL_TOKENS: tuple[str, ...] = tuple(
    dict.fromkeys(
        token for template in CHAT_TEMPLATES.values() for token in template.special_tokens
    )
)


def require_corpus(path: str) -> None:
    """Raises FileNotFoundError when `path` is not a file and SpecError naming it when it holds
    no text (nothing, or blank lines only), which sentencepiece reports without naming it.
    Reads only up to the first text."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"tokenizer training input not found: {path!r}")
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            if chunk.strip():
                return
    raise SpecError(f"tokenizer training input {path!r} is empty: no text to train on")


def train_sentencepiece(
    input_path: str,
    output_dir: str,
    vocab_size: int,
    *,
    model_type: str = "bpe",
    special_tokens: Sequence[str] = CHAT_SPECIAL_TOKENS,
    max_sentences: int = 2_000_000,
    num_threads: int | None = None,
) -> str:
    """Trains a SentencePiece model on `input_path` and returns the `.model` path.

    Args:
      input_path: UTF-8 text file, one sentence per line.
      output_dir: created if missing; receives tokenizer.model and tokenizer.vocab.
      vocab_size: total number of pieces, special tokens and the 256 byte pieces included.
      model_type: "bpe" or "unigram".
      special_tokens: user-defined symbols that always encode to one id each.
      max_sentences: lines sampled from large inputs (0: use every line).
      num_threads: trainer threads; default all CPUs.

    Raises:
      FileNotFoundError, SpecError: `input_path` is missing or holds no text.
    """
    require_corpus(input_path)
    os.makedirs(output_dir, exist_ok=True)
    model_prefix = os.path.join(output_dir, MODEL_BASENAME)
    sentencepiece.SentencePieceTrainer.train(
        input=input_path,
        model_prefix=model_prefix,
        vocab_size=vocab_size,
        model_type=model_type,
        byte_fallback=True,
        character_coverage=1.0,
        user_defined_symbols=list(special_tokens),
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        split_digits=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=3,
        input_sentence_size=max_sentences,
        shuffle_input_sentence=True,
        num_threads=num_threads or os.cpu_count() or 1,
        minloglevel=2,
    )
    return model_prefix + ".model"
