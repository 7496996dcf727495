"""Shared machinery of the eval binaries.

* :mod:`~evals.common.metrics` -- pass@k (unbiased estimator), maj@k, summary statistics.
* :mod:`reasonrl.data.prompt_templates` -- prompt templates by name (``r1``, ``qwen_math``,
  ``plain``).
* :mod:`~evals.common.protocols` -- published sampling settings by name (``r1``, ``qwen_math``...).
* :mod:`reasonrl.train.exports` -- HF checkpoint directory or reasonrl workdir -> directory.
* :mod:`~evals.common.store` -- resumable ``samples.jsonl`` and ``run_config.json`` (on
  :mod:`reasonrl.sampling.run_store`).
* :mod:`~evals.common.report` -- ``summary.json``, TensorBoard scalars, the PNG plot.
* :mod:`~evals.common.runner` -- generate, grade and record one benchmark run (sampling and
  grading through :mod:`reasonrl.sampling.problem_runs`, as distillation does).
* :mod:`~evals.common.cli` -- the absl flags and ``main`` both binaries share.
* :mod:`~evals.common.diversity_runner`, :mod:`~evals.common.diversity_report`,
  :mod:`~evals.common.diversity_quality` -- the diversity eval (``evals.diversity``): sampling
  open-ended prompts on the same path, NoveltyBench / hivemind measurements and outputs,
  reward-model quality scores.
"""
