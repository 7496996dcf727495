"""Training objectives: pure loss functions registered by name."""

from reasonrl.objectives import (  # noqa: F401  (register)
    cross_entropy,  # noqa: F401  (registers next_token, sft)
    dpo,
    policy_gradient,
    reward_model,
    rlp,
)
from reasonrl.objectives.logprobs import TokenStats, token_statistics
from reasonrl.objectives.metrics import Max, Mean, Min
from reasonrl.objectives.registry import (
    OBJECTIVES,
    ModelContext,
    Objective,
    ObjectiveOptionError,
    ParamsHooks,
    ReferenceHook,
    RegisteredObjective,
    StateHook,
    get_objective,
    register_objective,
)
from reasonrl.objectives.reward_model import load_reward_model

__all__ = [
    "Max",
    "Mean",
    "Min",
    "OBJECTIVES",
    "ModelContext",
    "Objective",
    "ObjectiveOptionError",
    "ParamsHooks",
    "ReferenceHook",
    "RegisteredObjective",
    "StateHook",
    "TokenStats",
    "get_objective",
    "load_reward_model",
    "register_objective",
    "token_statistics",
]
