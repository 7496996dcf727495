"""JSON Lines files as random-access record sources."""

from __future__ import annotations

import dataclasses
import json
import mmap
import warnings
from typing import Any

import numpy as np

from reasonrl.data.sources.base import (
    ByteRangeFile,
    MalformedRecordError,
    MalformedRecordWarning,
    mapped,
)
from reasonrl.data.spec import require_existing_file


def _line_spans(data: bytes | mmap.mmap) -> tuple[np.ndarray, np.ndarray]:
    """int64 [N] start offsets and int64 [N] end offsets (exclusive, before '\\n') of lines."""
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
    starts = np.concatenate([[0], newlines + 1]).astype(np.int64)
    ends = np.concatenate([newlines, [len(data)]]).astype(np.int64)
    return starts, ends


def _parse_object(raw: bytes) -> dict[str, Any]:
    record = json.loads(raw)
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    return record


class JsonlSource:
    """One JSON object per line; record i is the i-th well-formed, non-blank line as a dict.

    Opening the file indexes line offsets and parses every line once, so a malformed line is
    reported when the pipeline is built rather than mid-training. Blank lines are ignored.
    Records are re-read from disk by offset on access; nothing is kept in memory but offsets.
    """

    @dataclasses.dataclass(frozen=True)
    class Config:
        """Spec section `{"type": "jsonl", ...}`.

        Attributes:
          path: the .jsonl file.
          skip_malformed: skip (and count) unparsable lines instead of raising.
        """

        path: str
        skip_malformed: bool = False

        def __post_init__(self):
            require_existing_file("path", self.path)

    def __init__(self, path: str, *, skip_malformed: bool = False):
        """Indexes `path`.

        Raises:
          MalformedRecordError: naming "path:line" of the first unparsable line, unless
            `skip_malformed`; then such lines are counted in `num_malformed`, listed in
            `malformed_line_numbers` and a MalformedRecordWarning is issued.
        """
        self.path = path
        self._file = ByteRangeFile(path)
        kept_starts, kept_lengths, malformed = [], [], []
        with mapped(path) as data:
            starts, ends = _line_spans(data)
            for line_index, (start, end) in enumerate(zip(starts.tolist(), ends.tolist())):
                raw = data[start:end]
                if not raw.strip():
                    continue
                try:
                    _parse_object(raw)
                except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError too.
                    if not skip_malformed:
                        raise MalformedRecordError(
                            f"{path}:{line_index + 1}", f"malformed JSON line ({error})"
                        ) from None
                    malformed.append(line_index + 1)
                    continue
                kept_starts.append(start)
                kept_lengths.append(end - start)
        self._starts = np.asarray(kept_starts, dtype=np.int64)
        self._lengths = np.asarray(kept_lengths, dtype=np.int64)
        self.malformed_line_numbers: tuple[int, ...] = tuple(malformed)
        if malformed:
            warnings.warn(
                f"{path}: skipped {len(malformed)} malformed line(s), first at line(s) "
                f"{list(malformed[:10])}",
                MalformedRecordWarning,
                stacklevel=2,
            )

    @classmethod
    def from_config(cls, config: JsonlSource.Config) -> JsonlSource:
        return cls(config.path, skip_malformed=config.skip_malformed)

    @property
    def num_malformed(self) -> int:
        """Number of lines skipped as malformed (0 unless `skip_malformed`)."""
        return len(self.malformed_line_numbers)

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return _parse_object(self._file.read(int(self._starts[index]), int(self._lengths[index])))

    def __repr__(self) -> str:
        return f"JsonlSource({self.path!r}, records={len(self)}, malformed={self.num_malformed})"
