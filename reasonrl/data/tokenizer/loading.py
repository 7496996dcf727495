"""`load_tokenizer`: pick the `Tokenizer` implementation from what a path holds."""

from __future__ import annotations

import os
from collections.abc import Callable

from reasonrl.data.spec import SpecError
from reasonrl.data.tokenizer.base import Tokenizer
from reasonrl.data.tokenizer.hf_tokenizer import HFTokenizer
from reasonrl.data.tokenizer.sentencepiece_tokenizer import SentencePieceTokenizer

# File name predicate -> constructor taking that file's path. Directory lookup tries, in this
# order, the file names in `DIRECTORY_CANDIDATES`.
TOKENIZER_FILE_KINDS: dict[str, tuple[Callable[[str], bool], Callable[[str], Tokenizer]]] = {
    "sentencepiece": (lambda name: name.endswith(".model"), SentencePieceTokenizer),
    "huggingface": (lambda name: name == "tokenizer.json", HFTokenizer),
}
DIRECTORY_CANDIDATES = ("tokenizer.json", "tokenizer.model", "spm.model")


def load_tokenizer(path: str) -> Tokenizer:
    """Loads a tokenizer from a `.model` file, a `tokenizer.json` file or a directory.

    A directory is searched for `DIRECTORY_CANDIDATES` first and then for exactly one `*.model`.

    Raises:
      FileNotFoundError: when `path` (or a usable file inside the directory) does not exist.
      SpecError (a ValueError): when the file type is not recognised or a directory is
        ambiguous.
    """
    if os.path.isdir(path):
        path = _find_tokenizer_file(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"tokenizer path not found: {path!r}")
    name = os.path.basename(path)
    for matches, constructor in TOKENIZER_FILE_KINDS.values():
        if matches(name):
            return constructor(path)
    raise SpecError(
        f"cannot tell the tokenizer type of {path!r}: expected a SentencePiece '*.model' file "
        "or a Hugging Face 'tokenizer.json'"
    )


def _find_tokenizer_file(directory: str) -> str:
    for candidate in DIRECTORY_CANDIDATES:
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    models = sorted(name for name in os.listdir(directory) if name.endswith(".model"))
    if len(models) == 1:
        return os.path.join(directory, models[0])
    if models:
        raise SpecError(f"directory {directory!r} holds several .model files: {models}")
    raise FileNotFoundError(
        f"directory {directory!r} holds no tokenizer.json and no SentencePiece .model file"
    )
