"""The training engine: the stage engine every loop is built on (engine.py), the supervised
loop, one jit-compiled train step for every objective, orbax checkpoints, the config schema.
The job runner above it is `reasonrl.job`; the rl loop is `reasonrl.rl.loop`."""

from reasonrl.train.checkpointing import Checkpointer
from reasonrl.train.config import (
    JobConfigError,
    job_config,
    objective_config,
    stage_config,
    tokenizer_config,
    validate_job,
    validate_stage,
)
from reasonrl.train.engine import (
    NonFiniteLossError,
    StageResult,
    StageRun,
    StageSetup,
    build_stage,
    check_finite,
    global_batch,
    load_model,
)
from reasonrl.train.loops import LOOPS, StageLoop, get_loop, register_loop
from reasonrl.train.optimizer import make_optimizer, make_schedule, weight_decay_mask
from reasonrl.train.step import (
    StepConfig,
    TrainState,
    accumulate_gradients,
    jit_train_step,
    make_train_step,
    split_microbatches,
    state_shardings,
)
from reasonrl.train.supervised import run_supervised_stage

__all__ = [
    "Checkpointer",
    "JobConfigError",
    "LOOPS",
    "NonFiniteLossError",
    "StageLoop",
    "StageResult",
    "StageRun",
    "StageSetup",
    "StepConfig",
    "TrainState",
    "accumulate_gradients",
    "build_stage",
    "check_finite",
    "get_loop",
    "global_batch",
    "jit_train_step",
    "job_config",
    "load_model",
    "make_optimizer",
    "make_schedule",
    "make_train_step",
    "objective_config",
    "register_loop",
    "run_supervised_stage",
    "split_microbatches",
    "stage_config",
    "state_shardings",
    "tokenizer_config",
    "validate_job",
    "validate_stage",
    "weight_decay_mask",
]
