r"""DAPO dynamic sampling: train only on groups whose rewards differ, topping the batch up.

DAPO (arXiv 2503.14476; docs/methods.md §5 "DAPO") optimises its objective subject to
0 < #correct < G: a group whose G rewards are all equal has all-zero group-relative advantages
(see :mod:`reasonrl.rl.advantages`) and so gives no gradient. Dynamic sampling drops such groups
and keeps generating rollouts until the training batch is full of informative groups.

Layout as everywhere in :mod:`reasonrl.rl`: a rollout batch is a dict of per-sample arrays, each
[num_groups * G, ...], the G samples of one prompt contiguous (rows g*G .. g*G + G - 1).

Typical loop::

    buffer = DynamicSamplingBuffer(group_size=G, max_rounds=8)
    while not buffer.ready(batch_groups):
        buffer.add(rollout())               # {"rewards": [n*G], "tokens": [n*G, T], ...}
    sample = buffer.pop(batch_groups)       # sample.batch: exactly batch_groups groups ...
    if sample.exhausted:                    # ... unless max_rounds ran out first
        log.warning("dynamic sampling: only %d groups", sample.num_groups)

Everything is deterministic: groups leave in the order they arrived (FIFO) and nothing is
random. A buffer keeps what `pop` did not take, so a caller may carry a surplus over; the RL
loop (:mod:`reasonrl.rl.loop`) does not: it uses one buffer per step and drops the surplus, as
DAPO's reference implementation does (verl ``recipe/dapo``: the batch is cut to the train batch
size), so each step's batch depends only on that step's rollouts and a resumed run needs no
buffer in its checkpoint. Which field decides informativeness is the caller's choice
(``reward_key``): DAPO filters on accuracy (its ``filter_groups.metric=acc``), so that with
length or overlong shaping a group whose answers are all correct is still uninformative.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["DynamicSample", "DynamicSamplingBuffer", "informative_groups"]


def informative_groups(rewards, group_size: int) -> np.ndarray:
    """Which groups carry a learning signal: bool [num_groups], False where all G rewards are equal.

    ``rewards`` is [num_groups * group_size] with each group's samples contiguous. Groups of one
    sample (G == 1) are never informative (a lone sample has no group baseline). With binary
    rewards this is DAPO's 0 < #correct < G. Non-finite rewards raise ``ValueError``.
    """
    rewards = np.asarray(rewards)
    if rewards.ndim != 1 or group_size < 1 or rewards.shape[0] % group_size:
        raise ValueError(
            f"rewards of shape {rewards.shape} do not split into groups of "
            f"{group_size}; expected [num_groups * group_size]"
        )
    if not np.all(np.isfinite(rewards)):
        raise ValueError("rewards contain NaN or inf")
    grouped = rewards.reshape(-1, group_size)
    if grouped.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    return grouped.max(axis=1) != grouped.min(axis=1)


@dataclass(frozen=True)
class DynamicSample:
    """What :meth:`DynamicSamplingBuffer.pop` returns.

    Attributes:
        batch: field -> array [num_groups * G, ...], rows aligned across fields.
        num_groups: groups in ``batch``: the number asked for, or fewer if ``exhausted``.
        exhausted: True when ``max_rounds`` rollout rounds ran out before enough informative
            groups were found, so ``batch`` is short (the warning flag).
        rounds: rollout rounds (``add`` calls) since the previous pop.
        groups_seen: groups added in those rounds, informative or not.
        groups_dropped: of those, the uninformative ones that were discarded.
    """

    batch: dict[str, np.ndarray]
    num_groups: int
    exhausted: bool
    rounds: int
    groups_seen: int
    groups_dropped: int


class DynamicSamplingBuffer:
    """Collects informative groups from successive rollout batches into fixed-size train batches.

    Args:
        group_size: G, samples per prompt.
        max_rounds: cap on rollout rounds per train batch; once this many ``add`` calls have been
            made since the last pop, :meth:`ready` is True and :meth:`pop` returns what it has,
            flagged ``exhausted``. None: no cap.
        reward_key: the field whose per-sample values decide informativeness (the RL loop passes
            "correct" by default, DAPO's accuracy filter, or "rewards").

    Every batch passed to :meth:`add` must have the same fields, each with the same trailing
    shape (pad token arrays to one length), and contain ``reward_key``.
    """

    def __init__(
        self, group_size: int, *, max_rounds: int | None = None, reward_key: str = "rewards"
    ):
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1; got {group_size}")
        if max_rounds is not None and max_rounds < 1:
            raise ValueError(f"max_rounds must be >= 1 or None; got {max_rounds}")
        self.group_size = group_size
        self.max_rounds = max_rounds
        self.reward_key = reward_key
        self._chunks: list[dict[str, np.ndarray]] = []  # FIFO, each holding whole groups
        self._template: dict[str, np.ndarray] | None = None  # 0-row arrays: fields, shapes, dtypes
        self._num_groups = 0
        self._rounds = 0
        self._seen = 0
        self._dropped = 0

    @property
    def num_groups(self) -> int:
        """Informative groups held now."""
        return self._num_groups

    @property
    def rounds(self) -> int:
        """Rollout rounds (``add`` calls) since the last pop."""
        return self._rounds

    @property
    def exhausted(self) -> bool:
        """Whether ``max_rounds`` rounds have been used since the last pop."""
        return self.max_rounds is not None and self._rounds >= self.max_rounds

    def add(self, batch: Mapping[str, object]) -> int:
        """Adds one rollout round, keeping only its informative groups; returns how many it kept.

        ``batch`` maps field -> per-sample values [num_groups * G, ...] (arrays, or anything
        ``np.asarray`` takes, e.g. a list of completion strings).
        """
        arrays = {name: np.asarray(value) for name, value in batch.items()}
        if self.reward_key not in arrays:
            raise KeyError(f"batch has no {self.reward_key!r} field; fields: {sorted(arrays)}")
        keep = informative_groups(arrays[self.reward_key], self.group_size)
        n = keep.shape[0] * self.group_size
        for name, array in arrays.items():
            if array.ndim == 0 or array.shape[0] != n:
                raise ValueError(
                    f"field {name!r} has shape {array.shape}; expected {n} rows "
                    f"like {self.reward_key!r}"
                )
        if self._template is not None:
            if set(arrays) != set(self._template):
                raise ValueError(
                    f"batch fields {sorted(arrays)} differ from the earlier "
                    f"{sorted(self._template)}"
                )
            for name, array in arrays.items():
                if array.shape[1:] != self._template[name].shape[1:]:
                    raise ValueError(
                        f"field {name!r} has per-sample shape {array.shape[1:]}, "
                        f"earlier {self._template[name].shape[1:]}"
                    )
        else:
            self._template = {name: array[:0].copy() for name, array in arrays.items()}

        rows = np.repeat(keep, self.group_size)
        kept = int(keep.sum())
        if kept:
            self._chunks.append({name: array[rows] for name, array in arrays.items()})
        self._num_groups += kept
        self._rounds += 1
        self._seen += keep.shape[0]
        self._dropped += keep.shape[0] - kept
        return kept

    def ready(self, num_groups: int) -> bool:
        """True when :meth:`pop` can be called: ``num_groups`` groups are held, or the round
        cap is reached."""
        return self._num_groups >= num_groups or self.exhausted

    def pop(self, num_groups: int) -> DynamicSample:
        """The oldest ``num_groups`` groups (fewer, flagged ``exhausted``, if the round cap ran
        out first); the rest stay for the next call. Resets the round count.

        Raises ``RuntimeError`` if not :meth:`ready`.
        """
        if num_groups < 0:
            raise ValueError(f"num_groups must be >= 0; got {num_groups}")
        if not self.ready(num_groups):
            raise RuntimeError(
                f"only {self._num_groups} of {num_groups} groups collected after "
                f"{self._rounds} rounds; add more rollouts first"
            )
        take = min(num_groups, self._num_groups)
        if self._template is None:
            batch: dict[str, np.ndarray] = {}
        elif self._chunks:
            merged = {
                name: np.concatenate([chunk[name] for chunk in self._chunks])
                for name in self._template
            }
            cut = take * self.group_size
            batch = {name: array[:cut] for name, array in merged.items()}
            rest = {name: array[cut:].copy() for name, array in merged.items()}
            self._chunks = [rest] if self._num_groups > take else []
        else:
            batch = {name: array.copy() for name, array in self._template.items()}
        sample = DynamicSample(
            batch=batch,
            num_groups=take,
            exhausted=take < num_groups,
            rounds=self._rounds,
            groups_seen=self._seen,
            groups_dropped=self._dropped,
        )
        self._num_groups -= take
        self._rounds = self._seen = self._dropped = 0
        return sample
