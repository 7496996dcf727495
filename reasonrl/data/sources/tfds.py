"""TensorFlow Datasets splits as random-access record sources (`tfds.data_source`).

The dataset must already be prepared in ArrayRecord format under `data_dir`; nothing is ever
downloaded. TensorFlow itself is not imported.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from reasonrl.data.spec import SpecError, spec_error


def to_python(value: Any) -> Any:
    """A TFDS feature value as plain Python: bytes -> str, numpy scalars/arrays -> lists/ints."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, dict):
        return {key: to_python(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return [to_python(item) for item in value.tolist()] if value.ndim else value.item()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [to_python(item) for item in value]
    return value


class TfdsSource:
    """Examples of one split of a prepared TFDS dataset, as plain-Python dicts."""

    @dataclasses.dataclass(frozen=True)
    class Config:
        """Spec section `{"type": "tfds", ...}`.

        Attributes:
          name: dataset name, optionally with config and version ("name/config:1.0.0").
          split: split name or TFDS split expression ("train[:90%]").
          data_dir: directory holding the prepared dataset; default: TFDS's default data dir.
        """

        name: str
        split: str = "train"
        data_dir: str | None = None

        def __post_init__(self):
            if self.data_dir is not None and not os.path.isdir(self.data_dir):
                raise spec_error("data_dir", f"directory not found: {self.data_dir!r}")

    def __init__(self, name: str, *, split: str = "train", data_dir: str | None = None):
        import tensorflow_datasets as tfds  # Imported lazily: it is slow to import.

        self.name, self.split = name, split
        try:
            self._source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
        except Exception as error:  # TFDS raises many types for "not prepared"/"unknown".
            raise SpecError(
                f"cannot open TFDS dataset {name!r} split {split!r} (data_dir={data_dir!r}): "
                f"{error}"
            ) from error

    @classmethod
    def from_config(cls, config: TfdsSource.Config) -> TfdsSource:
        return cls(config.name, split=config.split, data_dir=config.data_dir)

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return to_python(self._source[int(index)])

    def __repr__(self) -> str:
        return f"TfdsSource({self.name!r}, split={self.split!r}, records={len(self)})"
