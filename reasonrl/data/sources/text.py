"""Plain-text files as random-access record sources: one document per line or per block."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Literal

import numpy as np

from reasonrl.data.sources.base import ByteRangeFile, MalformedRecordError, line_number_at, mapped
from reasonrl.data.spec import require_existing_file

# How documents are delimited -> regex matching one document. A line holding only whitespace
# counts as blank.
DOCUMENT_PATTERNS: dict[str, re.Pattern[bytes]] = {
    # Every non-blank line.
    "line": re.compile(rb"[^\n]*\S[^\n]*"),
    # Every maximal run of non-blank lines, i.e. blocks separated by one or more blank lines.
    "blank_line": re.compile(rb"[^\n]*\S[^\n]*(?:\n[^\n]*\S[^\n]*)*"),
}


class TextSource:
    """Documents of a UTF-8 text file; record i is `{text_field: text of document i}`.

    Opening the file indexes document offsets (no text is kept in memory). Windows line endings
    are normalised to "\\n".
    """

    @dataclasses.dataclass(frozen=True)
    class Config:
        """Spec section `{"type": "text", ...}`.

        Attributes:
          path: the text file.
          split: "line" (one document per non-blank line) or "blank_line" (documents are
            blocks separated by blank lines).
          text_field: record key the document text is stored under.
        """

        path: str
        split: Literal["line", "blank_line"] = "line"
        text_field: str = "text"

        def __post_init__(self):
            require_existing_file("path", self.path)

    def __init__(self, path: str, *, split: str = "line", text_field: str = "text"):
        if split not in DOCUMENT_PATTERNS:
            raise ValueError(f"unknown split {split!r}; known: {sorted(DOCUMENT_PATTERNS)}")
        self.path = path
        self.text_field = text_field
        self._file = ByteRangeFile(path)
        with mapped(path) as data:
            spans = np.array(
                [match.span() for match in DOCUMENT_PATTERNS[split].finditer(data)],
                dtype=np.int64,
            ).reshape(-1, 2)
        self._starts = spans[:, 0]
        self._lengths = spans[:, 1] - spans[:, 0]

    @classmethod
    def from_config(cls, config: TextSource.Config) -> TextSource:
        return cls(config.path, split=config.split, text_field=config.text_field)

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, index: int) -> dict[str, Any]:
        start = int(self._starts[index])
        raw = self._file.read(start, int(self._lengths[index]))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            with open(self.path, "rb") as f:
                line = line_number_at(f.read(start + error.start), start + error.start)
            raise MalformedRecordError(f"{self.path}:{line}", f"invalid UTF-8 ({error})") from None
        return {self.text_field: text.replace("\r\n", "\n").rstrip("\r")}

    def __repr__(self) -> str:
        return f"TextSource({self.path!r}, documents={len(self)})"
