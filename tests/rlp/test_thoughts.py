"""RLP's host-side assembly against hand-written rows: contexts, thought rows (stopped and cut
thoughts, a scored window running past the document's end, a context without a position), the
loss mask on the sampled thought tokens only, and where S_pred and S_ema are read."""

import numpy as np
import pytest

from reasonrl.rlp.thoughts import (
    ThoughtMarkers,
    gather_baseline,
    gather_scored,
    scoreable_mask,
    thought_prompts,
    thought_rows,
)

PAD, BOS, EOS, OPEN, CLOSE = 0, 1, 2, 50, 51
MARKERS = ThoughtMarkers(open=(OPEN,), close=CLOSE)
# two documents: "10 11 12 13" and "20 21", framed by bos / eos, padded to L = 7
DOCS = np.array([[BOS, 10, 11, 12, 13, EOS, PAD], [BOS, 20, 21, EOS, PAD, PAD, PAD]])
SEGMENTS = (np.arange(7)[None, :] < np.array([[6], [4]])).astype(np.int32)


def test_scoreable_mask_excludes_padding_specials_and_the_first_token():
    mask = scoreable_mask(DOCS, SEGMENTS, {BOS, EOS, PAD, OPEN, CLOSE})
    expected = np.zeros_like(DOCS, bool)
    expected[0, 1:5] = True  # 10 11 12 13 (t = 1 has the context x_<1 = bos)
    expected[1, 1:3] = True  # 20 21
    np.testing.assert_array_equal(mask, expected)
    # without bos, the first token has no context
    assert not scoreable_mask(DOCS[:, 1:], SEGMENTS[:, 1:], {EOS, PAD})[:, 0].any()


def test_thought_prompts():
    positions = np.array([[3], [-1]])
    prompts, lengths, valid = thought_prompts(DOCS, positions, MARKERS, PAD)
    assert prompts.shape == (2, 8)
    np.testing.assert_array_equal(prompts[0], [BOS, 10, 11, OPEN, PAD, PAD, PAD, PAD])
    np.testing.assert_array_equal(prompts[1, :2], [BOS, OPEN])  # no position: a dummy context
    np.testing.assert_array_equal(lengths, [4, 2])
    np.testing.assert_array_equal(valid, [True, False])


def _rows(score_tokens=2):
    """Document 0 at t = 3 (x_t = 12) and document 1 at t = 2 (x_t = 21), two thoughts each:
    the first stops on the close marker, the second is cut at the budget M = 3."""
    scoreable = scoreable_mask(DOCS, SEGMENTS, {BOS, EOS, PAD, OPEN, CLOSE})
    positions = np.array([[3], [2]])
    prompts, lengths, valid = thought_prompts(DOCS, positions, MARKERS, PAD)
    thoughts = np.array([[60, CLOSE, PAD], [61, 62, 63], [70, 71, CLOSE], [72, 73, 74]])
    return thought_rows(
        DOCS,
        SEGMENTS,
        scoreable,
        positions,
        prompts,
        lengths,
        valid,
        thoughts,
        np.array([2, 3, 3, 3]),
        np.array([True, False, True, False]),
        markers=MARKERS,
        group_size=2,
        score_tokens=score_tokens,
        seq_len=14,
        pad_id=PAD,
    )


def test_thought_rows_match_hand_written_rows():
    rows = _rows()
    expected = [
        # context      open  thought       close  x_t x_t+1
        [BOS, 10, 11, OPEN, 60, CLOSE, 12, 13],
        [BOS, 10, 11, OPEN, 61, 62, 63, CLOSE, 12, 13],  # cut: close appended
        [BOS, 20, OPEN, 70, 71, CLOSE, 21, EOS],
        [BOS, 20, OPEN, 72, 73, 74, CLOSE, 21, EOS],
    ]
    for row, want in enumerate(expected):
        got = rows.tokens[row]
        np.testing.assert_array_equal(got[: len(want)], want)
        assert np.all(got[len(want) :] == PAD)
        np.testing.assert_array_equal(rows.segment_ids[row], np.arange(14) < len(want))
        np.testing.assert_array_equal(rows.targets[row, : len(want) - 1], want[1:])
        np.testing.assert_array_equal(rows.positions[row, : len(want)], np.arange(len(want)))
    # the loss mask: j such that targets[j] is a sampled thought token (a sampled close marker
    # included; the open marker, an appended close, the context and x_t never)
    loss_at = [[3, 4], [3, 4, 5], [2, 3, 4], [2, 3, 4]]
    for row, js in enumerate(loss_at):
        np.testing.assert_array_equal(np.flatnonzero(rows.loss_mask[row]), js)
    # targets[score_index] are x_t, x_{t+1}
    np.testing.assert_array_equal(rows.score_index, [[5, 6], [7, 8], [5, 6], [6, 7]])
    for row in range(4):
        np.testing.assert_array_equal(
            rows.targets[row, rows.score_index[row]], rows.tokens[row, rows.score_index[row] + 1]
        )
    # x_{t+1} of document 1 is eos: in the row (the text goes on) but not scored
    np.testing.assert_array_equal(rows.score_mask, [[1, 1], [1, 1], [1, 0], [1, 0]])
    np.testing.assert_array_equal(rows.thought_lengths, [2, 3, 3, 3])


def test_gathers_read_s_pred_after_the_thought_and_s_ema_at_t_minus_one():
    rows = _rows()
    row_logprobs = np.arange(4 * 14, dtype=np.float32).reshape(4, 14)
    np.testing.assert_array_equal(
        gather_scored(row_logprobs, rows), [[5, 6], [21, 22], [33, 34], [48, 49]]
    )
    # document log-probs: column c holds log p(x_{c+1} | x_<=c), so x_t is at t - 1
    doc_logprobs = np.arange(2 * 7, dtype=np.float32).reshape(2, 7) * -1
    np.testing.assert_array_equal(
        gather_baseline(doc_logprobs, rows), -np.array([[2, 3], [2, 3], [8, 9], [8, 9]])
    )


def test_a_context_without_position_is_never_scored_nor_trained():
    scoreable = scoreable_mask(DOCS, SEGMENTS, {BOS, EOS, PAD, OPEN, CLOSE})
    positions = np.array([[3], [-1]])
    prompts, lengths, valid = thought_prompts(DOCS, positions, MARKERS, PAD)
    rows = thought_rows(
        DOCS,
        SEGMENTS,
        scoreable,
        positions,
        prompts,
        lengths,
        valid,
        np.full((2, 3), 60),
        np.array([3, 3]),
        np.array([False, False]),
        markers=MARKERS,
        group_size=1,
        score_tokens=1,
        seq_len=12,
        pad_id=PAD,
    )
    np.testing.assert_array_equal(rows.valid, [True, False])
    assert rows.loss_mask[1].sum() == 0 and not rows.score_mask[1].any()
    assert rows.loss_mask[0].sum() == 3 and rows.score_mask[0].all()


def test_rows_too_short_for_the_thought_budget_are_refused():
    with pytest.raises(ValueError, match="seq_len 12 < document length 7"):
        scoreable = scoreable_mask(DOCS, SEGMENTS, {BOS, EOS, PAD})
        positions = np.array([[3], [2]])
        prompts, lengths, valid = thought_prompts(DOCS, positions, MARKERS, PAD)
        thought_rows(
            DOCS,
            SEGMENTS,
            scoreable,
            positions,
            prompts,
            lengths,
            valid,
            np.zeros((2, 4), np.int32),
            np.array([4, 4]),
            np.array([False, False]),
            markers=MARKERS,
            group_size=1,
            score_tokens=1,
            seq_len=12,
            pad_id=PAD,
        )
