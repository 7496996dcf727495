r"""Math answer grading and reward functions.

The grader that decides whether a model's answer is right, used both by evals (accuracy) and by
RL (rewards), so that the numbers researchers read and the signal the policy trains on agree.

Typical use::

    from reasonrl.rewards import grade, grade_batch, get_reward

    grade(r"... so the answer is \boxed{\frac{1}{2}}.", "0.5").correct         # True
    results = grade_batch(completions, golds, num_workers=8)                    # evals
    reward = get_reward("math_correctness")(completion, gold)                   # RL

Modules (each documents its rules):

* :mod:`~reasonrl.rewards.extraction` -- final answer from a completion (last ``\boxed{}``,
  then named, switchable fallbacks: "final answer is", "Answer:", "answer is", the last math
  span, the last number), and from an answer written as a short sentence.
* :mod:`~reasonrl.rewards.normalize` -- string normalisation around math-verify (thousands
  separators, relations, matrices, units, degrees and trigonometry, trailing variables,
  unicode, multiple-choice letters; percent policy).
* :mod:`~reasonrl.rewards.screening` -- cheap rejection of pathological answers (length, nesting,
  huge powers/factorials) before sympy sees them.
* :mod:`~reasonrl.rewards.equivalence` -- the equivalence pipeline, built on math-verify.
* :mod:`~reasonrl.rewards.pool` / :mod:`~reasonrl.rewards.worker` -- math-verify runs in worker
  processes with a hard per-request deadline; safe from threads and processes. The worker
  reads ``i`` as the imaginary unit.
* :mod:`~reasonrl.rewards.grading` -- ``grade`` / ``grade_batch``.
* :mod:`~reasonrl.rewards.registry` -- reward functions by name.
* :mod:`~reasonrl.rewards.shaping` -- reward shaping: Kimi k1.5 length penalty, DAPO soft
  overlong punishment, format bonus (pure NumPy, per rollout batch).
* :mod:`~reasonrl.rewards.benchmarks` -- the vendored MATH-500 / AIME / AMC sets.

Safety: model output is never executed or ``eval``-ed; every equivalence check is bounded by a
hard time limit (a stuck worker process is killed), so no answer can hang or crash the caller.
"""

from reasonrl.rewards.benchmarks import BENCHMARK_NAMES, Problem, load_benchmark
from reasonrl.rewards.equivalence import (
    DEFAULT_TIMEOUT_S,
    Status,
    Verdict,
    check_equivalence,
    check_equivalence_batch,
    is_equivalent,
)
from reasonrl.rewards.extraction import (
    DEFAULT_FALLBACKS,
    FALLBACKS,
    extract_answer,
    find_last_boxed,
)
from reasonrl.rewards.grading import GradeResult, grade, grade_batch
from reasonrl.rewards.normalize import choice_letter, normalize_answer
from reasonrl.rewards.pool import (
    GraderUnavailableError,
    GradingPool,
    get_default_pool,
    shutdown_default_pool,
)
from reasonrl.rewards.registry import (
    REWARDS,
    RewardFn,
    compute_rewards,
    format_reward,
    get_reward,
    math_correctness_reward,
    math_correctness_strict_reward,
    register_reward,
)
from reasonrl.rewards.screening import screen_answer
from reasonrl.rewards.shaping import (
    LENGTH_PENALTIES,
    ShapedReward,
    dapo_overlong_penalty,
    get_length_penalty,
    kimi_length_penalty,
    register_length_penalty,
    shape_rewards,
)

__all__ = [
    "BENCHMARK_NAMES",
    "DEFAULT_FALLBACKS",
    "DEFAULT_TIMEOUT_S",
    "FALLBACKS",
    "GradeResult",
    "GraderUnavailableError",
    "GradingPool",
    "LENGTH_PENALTIES",
    "Problem",
    "REWARDS",
    "RewardFn",
    "ShapedReward",
    "Status",
    "Verdict",
    "check_equivalence",
    "check_equivalence_batch",
    "choice_letter",
    "compute_rewards",
    "dapo_overlong_penalty",
    "extract_answer",
    "find_last_boxed",
    "format_reward",
    "get_default_pool",
    "get_length_penalty",
    "get_reward",
    "grade",
    "grade_batch",
    "is_equivalent",
    "kimi_length_penalty",
    "load_benchmark",
    "math_correctness_reward",
    "math_correctness_strict_reward",
    "normalize_answer",
    "register_length_penalty",
    "register_reward",
    "screen_answer",
    "shape_rewards",
    "shutdown_default_pool",
]
