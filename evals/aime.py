"""Competition evals: ``python -m evals.aime --benchmark=aime24|aime25|amc23 --checkpoint=...``.

Flags and outputs: :mod:`evals.common.cli`, :mod:`evals.common.report`.
"""

from absl import flags

import reasonrl.cli
from evals.common import cli

COMPETITION_BENCHMARKS = ("aime24", "aime25", "amc23")

cli.define_flags()
BENCHMARK = flags.DEFINE_enum(
    "benchmark", "aime24", COMPETITION_BENCHMARKS, "Which competition set to evaluate."
)


def main(argv):
    cli.main_for(BENCHMARK.value, argv)


if __name__ == "__main__":
    reasonrl.cli.run(main)
