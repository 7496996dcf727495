"""Building RLP's sequences on the host: contexts to think after, and the rows that hold the
thoughts (NumPy, vectorised over rows; no model calls).

For a document row x (tokens [B, L]) and a position t (`positions` [B, P]) RLP needs

    the prompt      x_<t  + open               sampled from: the thought c follows it
    the thought row x_<t  + open + c + close + x_t .. x_{t+K−1}

The thought row is what the model scores after the thought (S_pred: the log-probs of x_t ..
at `score_index`) and what the policy gradient trains on (`loss_mask`: the thought's own
tokens c, including a sampled close marker; never the context, the open marker, an appended
close marker nor the scored tokens). A thought cut at max_thought_tokens gets the close marker
appended (not trained on). Context n = b * P + p, and its G thoughts are rows n * G .. n * G +
G − 1 (the sampler's order), so a group's rows are contiguous.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ThoughtMarkers:
    """Token ids around a thought: `open` (any length ≥ 0) before it, `close` (one id) after."""

    open: tuple[int, ...]
    close: int


def scoreable_mask(tokens: np.ndarray, segment_ids: np.ndarray, special_ids) -> np.ndarray:
    """bool [B, L]: the positions t whose token RLP may predict: a document token (segment id
    > 0), not a special token (bos, eos, pad, the thought markers), and t ≥ 1 (x_<t is not
    empty)."""
    mask = (np.asarray(segment_ids) > 0) & ~np.isin(tokens, np.asarray(list(special_ids)))
    mask[:, 0] = False
    return mask


def thought_prompts(
    tokens: np.ndarray, positions: np.ndarray, markers: ThoughtMarkers, pad_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The contexts to sample thoughts after.

    tokens     int [B, L]  document rows
    positions  int [B, P]  from `objectives.rlp.sample_positions`; -1 = no position

    Returns (prompts int32 [B*P, L + len(open)] right-padded with `pad_id`, prompt_lengths
    int32 [B*P] = t + len(open), valid bool [B*P]). A context without a position (-1) gets
    the prompt x_0 + open and valid False: its thoughts are sampled (the shapes are static) but
    never scored nor trained on.
    """
    tokens = np.asarray(tokens)
    batch, length = tokens.shape
    t = np.asarray(positions).reshape(-1)
    valid = t >= 1
    t = np.where(valid, t, 1)
    docs = np.repeat(np.arange(batch), np.asarray(positions).shape[1])
    opening = np.asarray(markers.open, np.int32)
    width = length + len(opening)
    j = np.arange(width)[None, :]
    t_col = t[:, None]
    context = tokens[docs[:, None], np.minimum(j, length - 1)]
    marker = opening[np.clip(j - t_col, 0, max(len(opening) - 1, 0))] if len(opening) else 0
    prompts = np.where(j < t_col, context, np.where(j < t_col + len(opening), marker, pad_id))
    return prompts.astype(np.int32), (t + len(opening)).astype(np.int32), valid


@dataclasses.dataclass
class ThoughtRows:
    """The thought rows (R = B * P * G) and where their scored tokens are.

    tokens / targets / positions / segment_ids  int32 [R, S]  next-token layout (targets[j] =
        tokens[j + 1]; padding has segment id 0)
    loss_mask     int32 [R, S]  1 where targets[j] is a sampled thought token
    score_index   int32 [R, K]  j whose target is x_{t+k} (read S_pred's log-probs there)
    score_mask    bool  [R, K]  x_{t+k} exists and is scoreable (and the row's context is valid)
    doc_index / context_positions  int32 [R]  the row's document b and position t (for S_ema,
        see `gather_baseline`)
    thought_lengths int32 [R]   sampled thought tokens (with a sampled close marker)
    valid         bool  [R]     the row's context had a position
    """

    tokens: np.ndarray
    targets: np.ndarray
    positions: np.ndarray
    segment_ids: np.ndarray
    loss_mask: np.ndarray
    score_index: np.ndarray
    score_mask: np.ndarray
    doc_index: np.ndarray
    context_positions: np.ndarray
    thought_lengths: np.ndarray
    valid: np.ndarray

    def batch(self) -> dict[str, np.ndarray]:
        """The fields the train step reads (advantages are added by the caller)."""
        return {
            "tokens": self.tokens,
            "targets": self.targets,
            "positions": self.positions,
            "segment_ids": self.segment_ids,
            "loss_mask": self.loss_mask,
        }


def thought_rows(
    documents: np.ndarray,
    segment_ids: np.ndarray,
    scoreable: np.ndarray,
    positions: np.ndarray,
    prompts: np.ndarray,
    prompt_lengths: np.ndarray,
    valid: np.ndarray,
    thoughts: np.ndarray,
    thought_lengths: np.ndarray,
    stopped: np.ndarray,
    *,
    markers: ThoughtMarkers,
    group_size: int,
    score_tokens: int,
    seq_len: int,
    pad_id: int,
) -> ThoughtRows:
    """Assembles x_<t + open + c + close + x_t .. x_{t+K−1} for every sampled thought.

    documents       int [B, L]       the document rows
    segment_ids     int [B, L]       their segment ids (0: padding)
    scoreable       bool [B, L]      `scoreable_mask` of them
    positions       int [B, P]       the sampled positions (-1: none)
    prompts, prompt_lengths, valid   from `thought_prompts` ([N, W], [N], [N]; N = B * P)
    thoughts        int [N*G, M]     the sampled thought tokens (row n * G + g)
    thought_lengths int [N*G]        tokens per thought, a final close marker included
    stopped         bool [N*G]       the thought ended with the close marker (else it ran to M)
    seq_len         S ≥ L + len(open) + M + K (checked)
    """
    documents = np.asarray(documents)
    batch, length = documents.shape
    num_thoughts, budget = np.asarray(thoughts).shape
    width = np.asarray(prompts).shape[1]
    K, G = score_tokens, group_size
    if seq_len < length + len(markers.open) + budget + K:
        raise ValueError(
            f"seq_len {seq_len} < document length {length} + open marker "
            f"{len(markers.open)} + thought budget {budget} + scored tokens {K}"
        )
    context = np.repeat(np.arange(len(prompt_lengths)), G)  # [R]
    doc = np.repeat(np.arange(batch), np.asarray(positions).shape[1])[context]
    t = np.repeat(np.where(valid, np.asarray(positions).reshape(-1), 1), G)
    row_valid = np.repeat(valid, G)
    start = np.repeat(prompt_lengths, G).astype(np.int64)[:, None]  # a = t + len(open)
    n = np.asarray(thought_lengths)[:, None]
    close_end = start + n + (~np.asarray(stopped, bool))[:, None]  # e: after the close marker

    j = np.arange(seq_len)[None, :]
    prompt_rows = np.asarray(prompts)[context]
    tokens = np.where(j < start, prompt_rows[:, np.minimum(j[0], width - 1)], pad_id)
    thought = np.asarray(thoughts)[
        np.arange(num_thoughts)[:, None], np.clip(j - start, 0, budget - 1)
    ]
    tokens = np.where((j >= start) & (j < start + n), thought, tokens)
    tokens = np.where((j >= start + n) & (j < close_end), markers.close, tokens)
    offset = j - close_end  # k of the scored window
    source = t[:, None] + offset
    clipped = np.clip(source, 0, length - 1)
    in_window = (
        (offset >= 0)
        & (offset < K)
        & (source < length)
        & (np.asarray(segment_ids)[doc[:, None], clipped] > 0)
    )
    tokens = np.where(in_window, documents[doc[:, None], clipped], tokens)
    real = (j < close_end) | in_window

    k = np.arange(K)[None, :]
    window = t[:, None] + k  # [R, K]
    score_mask = (
        row_valid[:, None]
        & (window < length)
        & scoreable[doc[:, None], np.minimum(window, length - 1)]
    )
    targets = np.concatenate([tokens[:, 1:], np.full((num_thoughts, 1), pad_id)], axis=1)
    loss_mask = (j >= start - 1) & (j < start + n - 1) & row_valid[:, None]
    return ThoughtRows(
        tokens=tokens.astype(np.int32),
        targets=np.where(real & (j + 1 < seq_len), targets, pad_id).astype(np.int32),
        positions=np.where(real, j, 0).astype(np.int32),
        segment_ids=real.astype(np.int32),
        loss_mask=loss_mask.astype(np.int32),
        score_index=(close_end - 1 + k).astype(np.int32),
        score_mask=score_mask,
        doc_index=doc.astype(np.int32),
        context_positions=t.astype(np.int32),
        thought_lengths=np.asarray(thought_lengths, np.int32),
        valid=row_valid,
    )


def gather_scored(row_logprobs: np.ndarray, rows: ThoughtRows) -> np.ndarray:
    """S_pred's per-token log-probs: row_logprobs [R, S] (of the rows' targets) at the scored
    window -> float32 [R, K]."""
    return np.take_along_axis(np.asarray(row_logprobs), rows.score_index, axis=1).astype(np.float32)


def gather_baseline(document_logprobs: np.ndarray, rows: ThoughtRows) -> np.ndarray:
    """S_ema's per-token log-probs: document_logprobs [B, L] (of the documents' targets, so
    column t − 1 holds log p(x_t | x_<t)) at each row's window -> float32 [R, K]."""
    document_logprobs = np.asarray(document_logprobs)
    length = document_logprobs.shape[1]
    K = rows.score_index.shape[1]
    columns = np.clip(rows.context_positions[:, None] - 1 + np.arange(K)[None, :], 0, length - 1)
    return document_logprobs[rows.doc_index[:, None], columns].astype(np.float32)
