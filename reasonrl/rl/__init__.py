"""Reinforcement-learning utilities shared by the RL trainers (advantage estimators)."""

from reasonrl.rl.advantages import (ADVANTAGE_ESTIMATORS, get_advantage_estimator,
                                    register_advantage_estimator)

__all__ = ["ADVANTAGE_ESTIMATORS", "get_advantage_estimator", "register_advantage_estimator"]
