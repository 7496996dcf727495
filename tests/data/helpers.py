"""Constants and helpers shared by the data tests (used by conftest.py and the test modules)."""

from __future__ import annotations

import os

import numpy as np

CORPUS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "reasonrl", "assets", "corpus")
GSM8K_TEXT = os.path.join(CORPUS_DIR, "gsm8k_train.txt")
GSM8K_JSONL = os.path.join(CORPUS_DIR, "gsm8k_train.jsonl")

HF_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]
CHATML_JINJA = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3_JINJA = (
    "{{ '<|begin_of_text|>' }}{% for message in messages %}{{ '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)


def gsm8k_documents(count: int) -> list[str]:
    """The first `count` documents of the vendored GSM8K text (blank-line separated)."""
    with open(GSM8K_TEXT, encoding="utf-8") as f:
        return f.read().split("\n\n")[:count]


def check_row_layout(rows: dict, pad_id: int) -> list[dict]:
    """Asserts the packed-row contract on every row and returns the rows' pieces in order.

    Contract per row: real tokens form a prefix; segment_ids are 1, 2, ..., k over contiguous
    pieces and 0 on padding; positions count 0, 1, ... inside every piece and are 0 on
    padding; padding has tokens = targets = pad_id and loss_mask = 0.

    Args:
      rows: dict of [N, T] arrays (a batch, or batches concatenated along axis 0).

    Returns:
      One dict per piece with its tokens, targets and loss_mask (1-D arrays), row by row.
    """
    assert set(rows) == {"tokens", "targets", "loss_mask", "segment_ids", "positions"}
    for key, value in rows.items():
        assert value.dtype == np.int32 and value.ndim == 2, (key, value.dtype, value.shape)
    pieces = []
    for r in range(rows["tokens"].shape[0]):
        segment_ids, positions = rows["segment_ids"][r], rows["positions"][r]
        real = segment_ids > 0
        num_real = int(real.sum())
        assert real[:num_real].all() and not real[num_real:].any(), segment_ids
        padding = ~real
        assert (rows["tokens"][r][padding] == pad_id).all()
        assert (rows["targets"][r][padding] == pad_id).all()
        assert (rows["loss_mask"][r][padding] == 0).all()
        assert (positions[padding] == 0).all()
        starts = np.flatnonzero(np.diff(segment_ids[:num_real], prepend=0))
        stops = [*starts[1:].tolist(), num_real]
        assert segment_ids[:num_real][starts].tolist() == list(range(1, len(starts) + 1))
        for start, stop in zip(starts.tolist(), stops):
            assert positions[start:stop].tolist() == list(range(stop - start))
            pieces.append(
                {key: rows[key][r][start:stop] for key in ("tokens", "targets", "loss_mask")}
            )
    return pieces


def concat_batches(batches: list[dict]) -> dict:
    """Batches stacked along the row axis."""
    return {key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]}
