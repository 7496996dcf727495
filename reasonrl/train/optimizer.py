"""optax optimizers from config: AdamW, learning-rate schedules, clipping, weight-decay masks."""

from __future__ import annotations

import jax
import optax

SCHEDULES = ("cosine", "linear", "constant")
# Parameters whose path ends in one of these are decayed; norms' scales and biases are not.
DECAYED_SUFFIXES = ("kernel", "embedding", "lm_head")


def make_schedule(cfg) -> optax.Schedule:
    """Linear warmup from 0 to `learning_rate` over `warmup_steps`, then `schedule`:
    cosine or linear decay to `learning_rate * end_lr_fraction` at `total_steps`, or constant."""
    peak, warmup, total = cfg.learning_rate, cfg.warmup_steps, cfg.total_steps
    end = peak * cfg.get("end_lr_fraction", 0.1)
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"optimizer.schedule={cfg.schedule!r}; choose from {SCHEDULES}")
    decay_steps = max(total - warmup, 1)
    if cfg.schedule == "cosine":
        after = optax.cosine_decay_schedule(peak, decay_steps, alpha=end / peak if peak else 0.0)
    elif cfg.schedule == "linear":
        after = optax.linear_schedule(peak, end, decay_steps)
    else:
        after = optax.constant_schedule(peak)
    if warmup <= 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), after], [warmup])


def weight_decay_mask(params):
    """True for parameters that get weight decay (matrices), False for norms and biases."""

    def decayed(path, _):
        return str(getattr(path[-1], "key", path[-1])).endswith(DECAYED_SUFFIXES)

    return jax.tree_util.tree_map_with_path(decayed, params)


def make_optimizer(cfg) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """AdamW with global-norm clipping (`clip_norm` <= 0 disables it) and masked decay."""
    schedule = make_schedule(cfg)
    parts = []
    if cfg.get("clip_norm", 1.0) > 0:
        parts.append(optax.clip_by_global_norm(cfg.clip_norm))
    parts.append(
        optax.adamw(
            schedule,
            b1=cfg.get("b1", 0.9),
            b2=cfg.get("b2", 0.95),
            eps=cfg.get("eps", 1e-8),
            weight_decay=cfg.get("weight_decay", 0.0),
            mask=weight_decay_mask,
        )
    )
    return optax.chain(*parts), schedule
