"""The main job: `python -m reasonrl.main --config=configs/<recipe>.py --workdir=DIR`.

Any config field can be overridden on the command line, e.g.
`--config.stages.pretrain.train.steps=50`. Without --config it runs the embedded default,
configs/demo.py: a tiny end-to-end run on CPU (tokenizer -> pretrain -> SFT -> HF export).
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from reasonrl.paths import CONFIGS_DIR

DEFAULT_CONFIG = CONFIGS_DIR / "demo.py"  # the embedded default job; ships with any install
_CONFIG = config_flags.DEFINE_config_file(
    "config", str(DEFAULT_CONFIG), "Job config file (a python file with get_config()).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "runs/demo", "Directory for every output of the job.")


def main(argv) -> int:
    del argv
    # Imported here so that --help and flag errors are instant.
    from reasonrl.data import SpecError
    from reasonrl.parallel import initialize_distributed
    from reasonrl.train.config import JobConfigError
    from reasonrl.job import run_job

    if not flags.FLAGS["verbosity"].present:  # orbax and clu are chatty at INFO
        logging.set_verbosity(logging.WARNING)
    initialize_distributed()
    config_file = flags.FLAGS["config"].config_filename
    try:
        result = run_job(_CONFIG.value, _WORKDIR.value, config_file=config_file)
    except (JobConfigError, SpecError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n" + result.summary(), flush=True)
    return 0


if __name__ == "__main__":
    app.run(main)
