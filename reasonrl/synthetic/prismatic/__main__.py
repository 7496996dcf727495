"""``python -m reasonrl.synthetic.prismatic {features,score,select,label}`` (see ``cli``)."""

import reasonrl.cli
from reasonrl.synthetic.prismatic import cli

if __name__ == "__main__":
    cli.define_flags()
    reasonrl.cli.run(cli.main)
