r"""Trains a SentencePiece tokenizer on a text file.

  python -m reasonrl.data.train_tokenizer --input=corpus.txt --vocab_size=4096 --output=dir

writes `dir/tokenizer.model` (load it with `reasonrl.data.load_tokenizer(dir)`) and
`dir/tokenizer.vocab`. The model:
  * is byte-fallback BPE (unigram with --model_type=unigram): any UTF-8 text encodes, and
    decode(encode(text)) == text, newlines and repeated spaces included (identity
    normalisation, no dummy-prefix space);
  * has ids unk=0, bos=1 (<s>), eos=2 (</s>), pad=3 (<pad>);
  * holds every special token of the built-in chat templates (chatml, llama3) as a
    user-defined symbol, so those templates render with it;
  * splits digits into single characters, which suits arithmetic text.

Each line of the input is one training sentence; blank lines are ignored.
"""

from __future__ import annotations

import os
from typing import Sequence

import sentencepiece
from absl import app, flags

from reasonrl.data.tokenizer.chat_templates import CHAT_TEMPLATES

MODEL_BASENAME = "tokenizer"
CHAT_SPECIAL_TOKENS: tuple[str, ...] = tuple(
    dict.fromkeys(token for template in CHAT_TEMPLATES.values() for token in template.special_tokens)
)


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
    """
    if not os.path.isfile(input_path):
        raise FileNotFoundError(f"tokenizer training input not found: {input_path!r}")
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


_INPUT = flags.DEFINE_string("input", None, "UTF-8 text file to train on (one sentence a line).")
_VOCAB_SIZE = flags.DEFINE_integer("vocab_size", None, "Number of pieces in the vocabulary.")
_OUTPUT = flags.DEFINE_string("output", None, "Directory to write tokenizer.model into.")
_MODEL_TYPE = flags.DEFINE_enum("model_type", "bpe", ["bpe", "unigram"], "SentencePiece model.")
_MAX_SENTENCES = flags.DEFINE_integer(
    "max_sentences", 2_000_000, "Input lines sampled for training (0: all)."
)


def main(argv: Sequence[str]) -> None:
    del argv
    model_path = train_sentencepiece(
        _INPUT.value,
        _OUTPUT.value,
        _VOCAB_SIZE.value,
        model_type=_MODEL_TYPE.value,
        max_sentences=_MAX_SENTENCES.value,
    )
    print(f"wrote {model_path}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["input", "vocab_size", "output"])
    app.run(main)
