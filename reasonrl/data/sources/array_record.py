"""ArrayRecord files as random-access record sources (records are JSON objects or raw text)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, Literal

import grain
import numpy as np

from reasonrl.data.sources.base import MalformedRecordError
from reasonrl.data.spec import require_existing_file, spec_error


def _decode_json(raw: bytes, text_field: str) -> dict[str, Any]:
    del text_field
    record = json.loads(raw)
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    return record


def _decode_text(raw: bytes, text_field: str) -> dict[str, Any]:
    return {text_field: raw.decode("utf-8")}


# Record format name -> decoder of one record's bytes.
RECORD_DECODERS: dict[str, Callable[[bytes, str], dict[str, Any]]] = {
    "json": _decode_json,
    "text": _decode_text,
}


class ArrayRecordSource:
    """Records of one or more ArrayRecord files, in file order.

    Files should be written with `group_size:1` for fast random access. Decoding is lazy; a
    record that does not decode raises MalformedRecordError naming the file and record position.
    """

    @dataclasses.dataclass(frozen=True)
    class Config:
        """Spec section `{"type": "array_record", ...}`.

        Attributes:
          paths: one path or a list of paths of .array_record files.
          record_format: "json" (each record is a UTF-8 JSON object) or "text" (raw UTF-8 text).
          text_field: for "text", the record key the text is stored under.
        """

        paths: str | tuple[str, ...]
        record_format: Literal["json", "text"] = "json"
        text_field: str = "text"

        def __post_init__(self):
            paths = (self.paths,) if isinstance(self.paths, str) else self.paths
            if not paths:
                raise spec_error("paths", "must name at least one file")
            for path in paths:
                require_existing_file("paths", path)

    def __init__(
        self, paths: str | tuple[str, ...], *, record_format: str = "json", text_field: str = "text"
    ):
        if record_format not in RECORD_DECODERS:
            raise ValueError(
                f"unknown record_format {record_format!r}; known: {sorted(RECORD_DECODERS)}"
            )
        self.paths = (paths,) if isinstance(paths, str) else tuple(paths)
        self._decode = RECORD_DECODERS[record_format]
        self._text_field = text_field
        self._files = [grain.sources.ArrayRecordDataSource([path]) for path in self.paths]
        self._ends = np.cumsum([len(f) for f in self._files], dtype=np.int64)

    @classmethod
    def from_config(cls, config: ArrayRecordSource.Config) -> ArrayRecordSource:
        return cls(config.paths, record_format=config.record_format, text_field=config.text_field)

    def __len__(self) -> int:
        return int(self._ends[-1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"record {index} out of range [0, {len(self)})")
        file_index = int(np.searchsorted(self._ends, index, side="right"))
        position = index - (int(self._ends[file_index - 1]) if file_index else 0)
        raw = self._files[file_index][position]
        try:
            return self._decode(raw, self._text_field)
        except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError too.
            raise MalformedRecordError(
                f"{self.paths[file_index]}:record {position}", f"cannot decode record ({error})"
            ) from None

    def __repr__(self) -> str:
        return f"ArrayRecordSource({list(self.paths)!r}, records={len(self)})"
