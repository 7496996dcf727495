"""Metrics that merge exactly across micro-batches, devices and steps.

An objective reports each metric as one of these; the trainer merges them over gradient
accumulation without knowing what they mean, so a token mean over k micro-batches equals the
token mean of one big batch.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Mean:
    """sum / count, e.g. loss per token or accuracy per sequence."""

    total: jax.Array
    count: jax.Array

    @classmethod
    def of(cls, total, count) -> Mean:
        return cls(jnp.asarray(total, jnp.float32), jnp.asarray(count, jnp.float32))

    def merge(self, other: Mean) -> Mean:
        return Mean(self.total + other.total, self.count + other.count)

    def empty(self) -> Mean:
        return Mean(jnp.zeros_like(self.total), jnp.zeros_like(self.count))

    def compute(self) -> jax.Array:
        return self.total / jnp.maximum(self.count, 1e-9)


@flax.struct.dataclass
class Max:
    value: jax.Array

    @classmethod
    def of(cls, value) -> Max:
        return cls(jnp.asarray(value, jnp.float32))

    def merge(self, other: Max) -> Max:
        return Max(jnp.maximum(self.value, other.value))

    def empty(self) -> Max:
        return Max(jnp.full_like(self.value, -jnp.inf))

    def compute(self) -> jax.Array:
        return self.value


@flax.struct.dataclass
class Min:
    value: jax.Array

    @classmethod
    def of(cls, value) -> Min:
        return cls(jnp.asarray(value, jnp.float32))

    def merge(self, other: Min) -> Min:
        return Min(jnp.minimum(self.value, other.value))

    def empty(self) -> Min:
        return Min(jnp.full_like(self.value, jnp.inf))

    def compute(self) -> jax.Array:
        return self.value


METRIC_TYPES = (Mean, Max, Min)


def is_metric(x) -> bool:
    return isinstance(x, METRIC_TYPES)


def merge(a: dict, b: dict) -> dict:
    return jax.tree.map(lambda x, y: x.merge(y), a, b, is_leaf=is_metric)


def empty_like(metrics: dict) -> dict:
    return jax.tree.map(lambda m: m.empty(), metrics, is_leaf=is_metric)


def compute(metrics: dict) -> dict:
    return jax.tree.map(lambda m: m.compute(), metrics, is_leaf=is_metric)
