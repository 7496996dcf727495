"""Packing tokenised documents into fixed-length rows.

Input elements are `DocumentFeatures` (tokens, targets, loss_mask: int32 [L], see tasks.py).
Every packer yields rows of five int32 [T] arrays:

  tokens, targets, loss_mask  the documents' features laid side by side;
  segment_ids                 1..k for the k document pieces in the row, 0 on padding;
  positions                   0, 1, ... restarting at the start of every piece, 0 on padding.

Padding carries tokens = targets = pad id and loss_mask = 0. Because targets were shifted
inside each document, no target crosses a document boundary, whichever packer is used.

Packers (`PACKERS`, chosen by spec.packing.type):
  concat_then_split  Lays documents end to end and cuts every T tokens; a document that does
                     not fit is continued in the next row as a new piece (positions restart at
                     0 there, as attention cannot reach the piece in the previous row). No token
                     is dropped and rows are full except the very last one. The default for
                     pretraining.
  first_fit          grain's FirstFitPackIterDataset: whole documents go into the first of
                     `num_bins` rows with room, so no document is split; documents longer than T
                     are truncated or dropped (`overlong`). Suits SFT.
  pad                One document per row, padded to T (truncated/dropped when longer).
  pair               For the `preference` task (LAYOUT "pair"): one preference pair per row,
                     each side padded to T on its own (see `PairPacker` for the row fields).

Each packer's `LAYOUT` names what it takes: "document" (DocumentFeatures) or "pair"
(PairFeatures); the pipeline checks it against the task's `LAYOUT`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import grain
import numpy as np

from reasonrl.data.spec import spec_error
from reasonrl.data.tasks import PAIR_SIDES, DocumentFeatures, PairFeatures

DOCUMENT_FEATURES = ("tokens", "targets", "loss_mask")
ROW_FEATURES = (*DOCUMENT_FEATURES, "segment_ids", "positions")
PAIR_ROW_FEATURES = (
    *(f"{side}_{key}" for side in PAIR_SIDES for key in (*ROW_FEATURES, "last_index")),
    "pair_mask",
)


def _empty_row(seq_len: int, pad_id: int) -> dict[str, np.ndarray]:
    return {
        "tokens": np.full(seq_len, pad_id, dtype=np.int32),
        "targets": np.full(seq_len, pad_id, dtype=np.int32),
        "loss_mask": np.zeros(seq_len, dtype=np.int32),
        "segment_ids": np.zeros(seq_len, dtype=np.int32),
        "positions": np.zeros(seq_len, dtype=np.int32),
    }


class _ConcatThenSplitIterator(grain.DatasetIterator):
    """Fills each row from the current document onwards; see ConcatThenSplitIterDataset.

    State: {"parent": parent state *before* the document the next row starts in,
            "document_offset": tokens of that document already emitted}. It is JSON-native
    and exact: restoring re-reads one document and skips `document_offset` tokens.
    """

    def __init__(self, parent: grain.DatasetIterator, seq_len: int, pad_id: int):
        super().__init__(parent)
        self._seq_len = seq_len
        self._pad_id = pad_id
        self._positions = np.arange(seq_len, dtype=np.int32)
        self._document: DocumentFeatures | None = None
        self._document_parent_state: dict[str, Any] | None = None
        self._document_offset = 0

    def _next_document(self) -> bool:
        """Loads the next non-empty document; False when the parent is exhausted."""
        while True:
            parent_state = self._parent.get_state()
            try:
                document = next(self._parent)
            except StopIteration:
                return False
            if len(document["tokens"]):
                self._document, self._document_parent_state = document, parent_state
                self._document_offset = 0
                return True

    def __next__(self) -> dict[str, np.ndarray]:
        row = _empty_row(self._seq_len, self._pad_id)
        filled, segment_id = 0, 0
        while filled < self._seq_len:
            if self._document is None and not self._next_document():
                break
            start = self._document_offset
            length = min(self._seq_len - filled, len(self._document["tokens"]) - start)
            segment_id += 1
            for key in DOCUMENT_FEATURES:
                row[key][filled : filled + length] = self._document[key][start : start + length]
            row["segment_ids"][filled : filled + length] = segment_id
            row["positions"][filled : filled + length] = self._positions[:length]
            filled += length
            self._document_offset += length
            if self._document_offset == len(self._document["tokens"]):
                self._document = None
        if filled == 0:
            raise StopIteration
        return row

    def get_state(self) -> dict[str, Any]:
        if self._document is None:
            return {"parent": self._parent.get_state(), "document_offset": 0}
        return {"parent": self._document_parent_state, "document_offset": self._document_offset}

    def set_state(self, state: dict[str, Any]) -> None:
        self._parent.set_state(state["parent"])
        self._document = None
        if state["document_offset"]:
            if not self._next_document():
                raise ValueError(f"cannot restore packing state {state}: parent is exhausted")
            self._document_offset = state["document_offset"]


class ConcatThenSplitIterDataset(grain.IterDataset):
    """Concatenate documents and split every `seq_len` tokens (see module docstring).

    grain's own ConcatThenSplitIterDataset is not used: its state holds tuples that compare
    unequal to themselves after a JSON round trip (grain 0.2.18), which breaks restoring from
    a JSON checkpoint.
    """

    def __init__(self, parent: grain.IterDataset, *, seq_len: int, pad_id: int):
        super().__init__(parent)
        self._seq_len = seq_len
        self._pad_id = pad_id

    def __iter__(self) -> grain.DatasetIterator:
        return _ConcatThenSplitIterator(self._parent.__iter__(), self._seq_len, self._pad_id)

    def __str__(self) -> str:
        return f"ConcatThenSplitIterDataset(seq_len={self._seq_len})"


def _truncated(document: DocumentFeatures, seq_len: int) -> DocumentFeatures:
    """The first `seq_len` tokens; the last kept target stays valid (it is the next token)."""
    return {key: value[:seq_len] for key, value in document.items()}


def _limit_length(dataset: grain.IterDataset, seq_len: int, overlong: str) -> grain.IterDataset:
    """Drops empty documents and truncates or drops those longer than `seq_len`."""
    dataset = dataset.filter(lambda document: len(document["tokens"]) > 0)
    if overlong == "drop":
        return dataset.filter(lambda document: len(document["tokens"]) <= seq_len)
    return dataset.map(lambda document: _truncated(document, seq_len))


class ConcatThenSplitPacker:
    """`{"type": "concat_then_split"}`."""

    LAYOUT = "document"

    @dataclasses.dataclass(frozen=True)
    class Config:
        """No options."""

    def __init__(self, config: Config):
        del config

    def pack(
        self, dataset: grain.IterDataset, *, seq_len: int, pad_id: int, seed: int
    ) -> grain.IterDataset:
        del seed
        return ConcatThenSplitIterDataset(dataset, seq_len=seq_len, pad_id=pad_id)


class FirstFitPacker:
    """`{"type": "first_fit", "num_bins": N, "overlong": "truncate" | "drop"}`."""

    LAYOUT = "document"

    @dataclasses.dataclass(frozen=True)
    class Config:
        """Attributes:
        num_bins: rows filled at once; more bins, less padding (and more memory).
        overlong: what to do with documents longer than T: "truncate" or "drop".
        """

        num_bins: int = 16
        overlong: Literal["truncate", "drop"] = "truncate"

        def __post_init__(self):
            if self.num_bins < 1:
                raise spec_error("num_bins", f"must be >= 1, got {self.num_bins}")

    def __init__(self, config: Config):
        self._config = config

    def pack(
        self, dataset: grain.IterDataset, *, seq_len: int, pad_id: int, seed: int
    ) -> grain.IterDataset:
        dataset = _limit_length(dataset, seq_len, self._config.overlong)
        packed = grain.experimental.FirstFitPackIterDataset(
            dataset,
            length_struct={key: seq_len for key in DOCUMENT_FEATURES},
            num_packing_bins=self._config.num_bins,
            seed=seed,
            shuffle_bins=True,
            padding_struct={"tokens": pad_id, "targets": pad_id, "loss_mask": 0},
        )
        return packed.map(_rename_grain_packed_row)


def _rename_grain_packed_row(row: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """grain names segment ids/positions per feature ("tokens_segment_ids"); keep one set."""
    return {
        **{key: row[key].astype(np.int32) for key in DOCUMENT_FEATURES},
        "segment_ids": row["tokens_segment_ids"],
        "positions": row["tokens_positions"],
    }


class PadPacker:
    """`{"type": "pad", "overlong": "truncate" | "drop"}`: one document per row."""

    LAYOUT = "document"

    @dataclasses.dataclass(frozen=True)
    class Config:
        """Attributes:
        overlong: what to do with documents longer than T: "truncate" or "drop".
        """

        overlong: Literal["truncate", "drop"] = "truncate"

    def __init__(self, config: Config):
        self._config = config

    def pack(
        self, dataset: grain.IterDataset, *, seq_len: int, pad_id: int, seed: int
    ) -> grain.IterDataset:
        del seed
        dataset = _limit_length(dataset, seq_len, self._config.overlong)
        return dataset.map(lambda document: _pad_row(document, seq_len, pad_id))


def _pad_row(document: DocumentFeatures, seq_len: int, pad_id: int) -> dict[str, np.ndarray]:
    row = _empty_row(seq_len, pad_id)
    length = len(document["tokens"])
    for key in DOCUMENT_FEATURES:
        row[key][:length] = document[key]
    row["segment_ids"][:length] = 1
    row["positions"][:length] = np.arange(length, dtype=np.int32)
    return row


class PairPacker:
    """`{"type": "pair", "overlong": "truncate" | "drop"}`: one preference pair per row.

    A row holds, for side in ("chosen", "rejected"), the side's document padded to T exactly as
    the `pad` packer lays it out:

      {side}_tokens, {side}_targets, {side}_loss_mask, {side}_segment_ids, {side}_positions
                                                                  int32 [T]
      {side}_last_index   int32 []   index of the side's last real (non-pad) token

    and `pair_mask` float32 []: 1.0 when both sides keep at least one loss-masked (response)
    token, else 0.0 (the row then counts for nothing).

    A side longer than T is, as with the other packers, either truncated to its first T tokens
    ("truncate", the default: the prompt is kept and the response is cut from its end; a
    response cut away entirely gives pair_mask 0) or its whole pair is dropped ("drop").
    """

    LAYOUT = "pair"

    @dataclasses.dataclass(frozen=True)
    class Config:
        """Attributes:
        overlong: what to do with a pair whose chosen or rejected side is longer than T:
          "truncate" or "drop".
        """

        overlong: Literal["truncate", "drop"] = "truncate"

    def __init__(self, config: Config):
        self._config = config

    def pack(
        self, dataset: grain.IterDataset, *, seq_len: int, pad_id: int, seed: int
    ) -> grain.IterDataset:
        del seed
        if self._config.overlong == "drop":
            dataset = dataset.filter(
                lambda pair: all(len(pair[f"{side}_tokens"]) <= seq_len for side in PAIR_SIDES)
            )
        return dataset.map(lambda pair: _pair_row(pair, seq_len, pad_id))


def _pair_row(pair: PairFeatures, seq_len: int, pad_id: int) -> dict[str, np.ndarray]:
    row: dict[str, np.ndarray] = {}
    scored = True
    for side in PAIR_SIDES:
        document = _truncated({key: pair[f"{side}_{key}"] for key in DOCUMENT_FEATURES}, seq_len)
        length = len(document["tokens"])
        row.update(
            {f"{side}_{key}": value for key, value in _pad_row(document, seq_len, pad_id).items()}
        )
        row[f"{side}_last_index"] = np.asarray(max(length - 1, 0), dtype=np.int32)
        scored = scored and bool(document["loss_mask"].any())
    row["pair_mask"] = np.asarray(1.0 if scored else 0.0, dtype=np.float32)
    return row


# `type` value of spec.packing -> packer class (with a nested `Config` and a `LAYOUT`).
PACKERS: dict[str, Any] = {
    "concat_then_split": ConcatThenSplitPacker,
    "first_fit": FirstFitPacker,
    "pad": PadPacker,
    "pair": PairPacker,
}
