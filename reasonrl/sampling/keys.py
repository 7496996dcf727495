"""Sampling keys that depend on what is sampled, not on when: a batch of problems is drawn with
the key of its first problem's id, so resuming, reordering batches or running on another host
gives the same samples (``problem_runs.complete_problems``, which the eval binaries and
distillation sample through, uses this)."""

from __future__ import annotations

import hashlib

import jax


def stable_hash(text: str) -> int:
    """A 31-bit hash of ``text`` that is the same in every process and Python version."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF


def batch_rng(seed: int, first_problem_id: str) -> jax.Array:
    """The PRNG key of the batch that starts with ``first_problem_id``."""
    return jax.random.fold_in(jax.random.key(seed), stable_hash(first_problem_id))
