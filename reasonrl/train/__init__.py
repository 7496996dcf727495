"""The training engine: one jit-compiled step for every objective, orbax checkpoints, clu
metrics, and jobs made of stages."""

from reasonrl.train.checkpointing import Checkpointer
from reasonrl.train.config import (JobConfigError, job_config, objective_config, stage_config,
                                   tokenizer_config, validate_job, validate_stage)
from reasonrl.train.job import JobResult, run_job
from reasonrl.train.optimizer import make_optimizer, make_schedule, weight_decay_mask
from reasonrl.train.step import (StepConfig, TrainState, accumulate_gradients, jit_train_step,
                                 make_train_step, split_microbatches, state_shardings)
from reasonrl.train.trainer import NonFiniteLossError, StageResult, run_stage

__all__ = [
    "Checkpointer", "JobConfigError", "JobResult", "NonFiniteLossError",
    "StageResult", "StepConfig", "TrainState", "accumulate_gradients", "jit_train_step",
    "job_config", "make_optimizer", "make_schedule", "make_train_step", "objective_config",
    "run_job", "run_stage", "split_microbatches", "stage_config", "state_shardings",
    "tokenizer_config", "validate_job", "validate_stage", "weight_decay_mask",
]
