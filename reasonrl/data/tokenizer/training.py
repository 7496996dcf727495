"""Training SentencePiece tokenizers that work with the built-in chat templates.

The command-line entry point is `python -m reasonrl.data.train_tokenizer` (see there).
"""

from __future__ import annotations

import os
import re
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
# The thinking markers of reasoning models' chat templates (Qwen3, DeepSeek-R1): added as single
# ids with `thinking_markers=True` (RLP's thoughts are delimited by them).
THINKING_MARKERS: tuple[str, ...] = ("<think>", "</think>")


def special_tokens(thinking_markers: bool = False) -> tuple[str, ...]:
    """The user-defined symbols of a trained tokenizer: the chat templates' special tokens, plus
    the thinking markers when asked."""
    return CHAT_SPECIAL_TOKENS + (THINKING_MARKERS if thinking_markers else ())


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
      SpecError: "vocab_size: ..." when the corpus needs more pieces than `vocab_size` (its
        characters, the byte pieces and the special tokens) or cannot yield that many.
    """
    require_corpus(input_path)
    os.makedirs(output_dir, exist_ok=True)
    model_prefix = os.path.join(output_dir, MODEL_BASENAME)
    try:
        _train(
            input_path,
            model_prefix,
            vocab_size,
            model_type,
            special_tokens,
            max_sentences,
            num_threads,
        )
    except RuntimeError as error:
        vocabulary_error = _vocabulary_error(error, input_path, vocab_size)
        if vocabulary_error is None:
            raise
        raise vocabulary_error from error
    return model_prefix + ".model"


# sentencepiece's messages when vocab_size does not fit the corpus.
_TOO_FEW = re.compile(r"smaller than required_chars\. (\d+) vs (\d+)")
_TOO_MANY = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")


def _vocabulary_error(error: RuntimeError, input_path: str, vocab_size: int) -> SpecError | None:
    """A SpecError naming vocab_size and the size that would work, or None for other errors."""
    text = str(error)
    if match := _TOO_FEW.search(text):
        return SpecError(
            f"vocab_size: {vocab_size} is below the {match[2]} pieces {input_path!r} needs (its "
            f"characters, the 256 byte pieces and the special tokens); set it >= {match[2]}"
        )
    if match := _TOO_MANY.search(text):
        return SpecError(
            f"vocab_size: {vocab_size} is more pieces than {input_path!r} can yield; set it "
            f"<= {match[2]}"
        )
    return None


def _train(
    input_path, model_prefix, vocab_size, model_type, special_tokens, max_sentences, num_threads
) -> None:
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
