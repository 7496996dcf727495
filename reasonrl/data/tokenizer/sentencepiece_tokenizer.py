"""`Tokenizer` backed by a SentencePiece `.model` file."""

from __future__ import annotations

import os
from collections.abc import Sequence

import sentencepiece

from reasonrl.data.tokenizer.base import Tokenizer


def _optional_id(raw_id: int) -> int | None:
    """SentencePiece reports an absent bos/eos/pad as -1."""
    return None if raw_id < 0 else raw_id


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece model (BPE or unigram).

    Chat special tokens must be user-defined symbols of the model (see
    `reasonrl.data.train_tokenizer`), so that they encode to one id each.
    """

    def __init__(self, model_path: str):
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"SentencePiece model not found: {model_path!r}")
        self.name = model_path
        self._processor = sentencepiece.SentencePieceProcessor(model_file=model_path)

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        return self._frame(self._processor.encode(text), add_bos, add_eos)

    def decode(self, ids: Sequence[int]) -> str:
        return self._processor.decode([int(i) for i in ids])

    @property
    def vocab_size(self) -> int:
        return self._processor.get_piece_size()

    @property
    def bos_id(self) -> int | None:
        return _optional_id(self._processor.bos_id())

    @property
    def eos_id(self) -> int | None:
        return _optional_id(self._processor.eos_id())

    @property
    def declared_pad_id(self) -> int | None:
        return _optional_id(self._processor.pad_id())

    def token_to_id(self, token: str) -> int | None:
        token_id = self._processor.piece_to_id(token)
        # piece_to_id answers unk_id for unknown pieces; only an exact round trip is a hit.
        if self._processor.id_to_piece(token_id) != token:
            return None
        return token_id
