"""Training objectives: pure loss functions registered by name."""

from reasonrl.objectives import cross_entropy  # noqa: F401  (registers next_token, sft)
from reasonrl.objectives import dpo, policy_gradient, reward_model  # noqa: F401  (register)
from reasonrl.objectives.metrics import Max, Mean, Min
from reasonrl.objectives.logprobs import TokenStats, token_statistics
from reasonrl.objectives.registry import (OBJECTIVES, ModelContext, Objective,
                                          RegisteredObjective, get_objective,
                                          register_objective)

__all__ = ["Max", "Mean", "Min", "OBJECTIVES", "ModelContext", "Objective", "RegisteredObjective", "TokenStats", "get_objective",
           "register_objective", "token_statistics"]
