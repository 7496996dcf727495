"""MATH-500 eval: ``python -m evals.math500 --checkpoint=... --output_dir=... [--protocol=r1]``.

Flags and outputs: :mod:`evals.common.cli`, :mod:`evals.common.report`.
"""

import reasonrl.cli
from evals.common import cli

cli.define_flags()


def main(argv):
    cli.main_for("math500", argv)


if __name__ == "__main__":
    reasonrl.cli.run(main)
