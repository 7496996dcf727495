"""Packers on synthetic documents: layout, and every document recovered token for token."""

from __future__ import annotations

import grain
import numpy as np
import pytest

from reasonrl.data import PACKERS, next_token_features
from tests.data.helpers import check_row_layout, concat_batches

PAD = 0
SEQ_LEN = 16


def synthetic_documents(seed: int, count: int = 60, max_len: int = 40) -> list[np.ndarray]:
    """Documents with globally unique token values (so each token names its document and
    place), lengths 1..max_len: many shorter than SEQ_LEN, many longer, some exactly equal."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len + 1, size=count)
    lengths[:3] = [SEQ_LEN, 1, min(max_len, 2 * SEQ_LEN)]
    first_tokens = 1 + np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return [np.arange(f, f + n, dtype=np.int32) for f, n in zip(first_tokens, lengths)]


def expected_features(document: np.ndarray) -> dict[str, np.ndarray]:
    """Next-token targets written out directly: predict the next token of the same document;
    the last token predicts nothing (pad target, loss 0)."""
    return {
        "tokens": document,
        "targets": np.append(document[1:], PAD),
        "loss_mask": np.append(np.ones(len(document) - 1, np.int32), 0),
    }


def pack(documents, packing: dict, seq_len: int = SEQ_LEN, seed: int = 0) -> dict:
    features = [next_token_features(d, np.ones(len(d), bool), PAD) for d in documents]
    dataset = grain.MapDataset.source(features).to_iter_dataset()
    packing = dict(packing)
    packer_class = PACKERS[packing.pop("type")]
    packer = packer_class(packer_class.Config(**packing))
    rows = packer.pack(dataset, seq_len=seq_len, pad_id=PAD, seed=seed)
    return concat_batches(list(rows.batch(1)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_concat_then_split_loses_and_duplicates_nothing(seed):
    documents = synthetic_documents(seed)
    rows = pack(documents, {"type": "concat_then_split"})
    pieces = check_row_layout(rows, PAD)
    # All rows but the last are full.
    assert (rows["segment_ids"][:-1] > 0).all()
    # Walk the documents in order; each piece must be the next slice of the current document.
    piece_iter = iter(pieces)
    for document in documents:
        expected = expected_features(document)
        offset = 0
        while offset < len(document):
            piece = next(piece_iter)
            stop = offset + len(piece["tokens"])
            for key in expected:
                np.testing.assert_array_equal(piece[key], expected[key][offset:stop], err_msg=key)
            offset = stop
    assert next(piece_iter, None) is None


def test_concat_then_split_pieces_break_only_at_documents_or_rows():
    documents = synthetic_documents(3)
    rows = pack(documents, {"type": "concat_then_split"})
    starts = {int(d[0]) for d in documents}
    tokens, positions = rows["tokens"], rows["positions"]
    real = rows["segment_ids"] > 0
    # A piece starts (position 0) exactly at document starts, plus at row starts.
    piece_starts = set(tokens[real & (positions == 0)].tolist())
    assert starts <= piece_starts
    assert piece_starts - starts <= set(tokens[:, 0].tolist())
    # No target crosses into another document: a predicted target is the next token value.
    predicted = rows["loss_mask"] == 1
    np.testing.assert_array_equal(rows["targets"][predicted], tokens[predicted] + 1)
    assert not np.isin(rows["targets"][predicted], list(starts)).any()


@pytest.mark.parametrize(
    "packing",
    [{"type": "first_fit", "num_bins": 4}, {"type": "pad"}],
    ids=lambda packing: packing["type"],
)
def test_whole_document_packers_keep_documents_intact(packing):
    documents = synthetic_documents(4, max_len=SEQ_LEN)
    rows = pack(documents, packing)
    pieces = check_row_layout(rows, PAD)
    assert len(pieces) == len(documents)
    by_first_token = {int(p["tokens"][0]): p for p in pieces}
    for document in documents:
        for key, value in expected_features(document).items():
            np.testing.assert_array_equal(by_first_token[int(document[0])][key], value)
    if packing["type"] == "pad":
        assert (rows["segment_ids"].max(axis=1) == 1).all()
    else:  # First-fit actually shares rows.
        assert len(rows["tokens"]) < len(documents)


@pytest.mark.parametrize("packer", ["first_fit", "pad"])
def test_overlong_documents_truncated_or_dropped(packer):
    documents = synthetic_documents(5)
    long_count = sum(len(d) > SEQ_LEN for d in documents)
    assert long_count > 0
    kept = check_row_layout(pack(documents, {"type": packer, "overlong": "drop"}), PAD)
    assert len(kept) == len(documents) - long_count
    truncated = check_row_layout(pack(documents, {"type": packer, "overlong": "truncate"}), PAD)
    by_first_token = {int(p["tokens"][0]): p for p in truncated}
    for document in documents:
        piece = by_first_token[int(document[0])]
        head = expected_features(document)
        for key in head:
            np.testing.assert_array_equal(piece[key], head[key][:SEQ_LEN])
