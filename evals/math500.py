"""MATH-500 eval: ``python -m evals.math500 --checkpoint=... --output_dir=... [--protocol=r1]``.

Flags and outputs: :mod:`evals.common.cli`, :mod:`evals.common.report`.
"""

from absl import app

from evals.common import cli

cli.define_flags()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    cli.main_for("math500")


if __name__ == "__main__":
    app.run(main)
