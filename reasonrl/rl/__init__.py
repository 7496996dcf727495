"""Reinforcement learning with verifiable rewards: the rl stage loop (`reasonrl.rl.loop`, on the
stage engine), rollouts (`rollout`), advantage estimators by name and DAPO dynamic sampling."""

from reasonrl.rl.advantages import (
    ADVANTAGE_ESTIMATORS,
    get_advantage_estimator,
    register_advantage_estimator,
)
from reasonrl.rl.dynamic_sampling import DynamicSample, DynamicSamplingBuffer, informative_groups

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "DynamicSample",
    "DynamicSamplingBuffer",
    "get_advantage_estimator",
    "informative_groups",
    "register_advantage_estimator",
]
