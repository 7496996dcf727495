r"""Trains a SentencePiece tokenizer on a text file.

  python -m reasonrl.data.train_tokenizer --input=corpus.txt --vocab_size=4096 --output=dir

writes `dir/tokenizer.model` (load it with `reasonrl.data.load_tokenizer(dir)`) and
`dir/tokenizer.vocab`. The model:
  * is byte-fallback BPE (unigram with --model_type=unigram): any UTF-8 text encodes, and
    decode(encode(text)) == text, newlines and repeated spaces included (identity
    normalisation, no dummy-prefix space);
  * has ids unk=0, bos=1 (<s>), eos=2 (</s>), pad=3 (<pad>);
  * holds every special token of the built-in chat templates (chatml, llama3) as a
    user-defined symbol, so those templates render with it (and, with --thinking_markers,
    <think> and </think>, one id each: RLP's thought delimiters);
  * splits digits into single characters, which suits arithmetic text.

Each line of the input is one training sentence; blank lines are ignored. A missing or empty
input is reported in one line `error: ...` (exit status 2), as by every reasonrl binary.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import flags

from reasonrl import cli
from reasonrl.data.tokenizer.training import special_tokens, train_sentencepiece


def _define_flags() -> None:
    """Command-line flags; defined only when run as a program, so importing this module (e.g.
    through `reasonrl.data`) never claims flag names in absl's global registry."""
    flags.DEFINE_string("input", None, "UTF-8 text file to train on (one sentence a line).")
    flags.DEFINE_integer("vocab_size", None, "Number of pieces in the vocabulary.")
    flags.DEFINE_string("output", None, "Directory to write tokenizer.model into.")
    flags.DEFINE_enum("model_type", "bpe", ["bpe", "unigram"], "SentencePiece model type.")
    flags.DEFINE_integer("max_sentences", 2_000_000, "Input lines sampled for training (0: all).")
    flags.DEFINE_bool("thinking_markers", False, "Also make <think> and </think> single ids.")
    flags.mark_flags_as_required(["input", "vocab_size", "output"])


def main(argv: Sequence[str]) -> None:
    del argv
    values = flags.FLAGS
    model_path = train_sentencepiece(
        values.input,
        values.output,
        values.vocab_size,
        model_type=values.model_type,
        max_sentences=values.max_sentences,
        special_tokens=special_tokens(values.thinking_markers),
    )
    print(f"wrote {model_path}")


if __name__ == "__main__":
    _define_flags()
    cli.run(main)
