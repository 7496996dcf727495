"""The main job: `python -m reasonrl.main --config=configs/<recipe>.py --workdir=DIR`.

Any config field can be overridden on the command line, e.g.
`--config.stages.pretrain.train.steps=50`. Without --config it runs the embedded default,
configs/demo.py: a tiny end-to-end run on CPU (tokenizer -> pretrain -> SFT -> HF export).

The workdir belongs to this job while it runs (a second job on it refuses, naming this one), and
its results are reused only when they were made from the same inputs (`reasonrl.job`):
`--reuse_changed` keeps a trained tokenizer and finished or interrupted stages whose
fingerprints differ from this job's anyway. A mistake of the user's (a config field, a missing
file, a locked or mismatched workdir) is reported in one line, exit status 2 (`reasonrl.cli`).
"""

from __future__ import annotations

from absl import flags, logging

from reasonrl import cli
from reasonrl.paths import CONFIGS_DIR

DEFAULT_CONFIG = CONFIGS_DIR / "demo.py"  # the embedded default job; ships with any install
_CONFIG = cli.define_config_file(
    "config", str(DEFAULT_CONFIG), "Job config file (a python file with get_config())."
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/demo", "Directory for every output of the job.")
_REUSE_CHANGED = flags.DEFINE_bool(
    "reuse_changed",
    False,
    "Reuse the workdir's trained tokenizer and finished or interrupted stages even when they "
    "were made from other inputs than this job's (their fingerprints differ): warn and record "
    "the new fingerprints instead of refusing.",
)


def main(argv) -> int:
    del argv
    # Imported here so that --help and flag errors are instant.
    from reasonrl.job import run_job
    from reasonrl.parallel import initialize_distributed

    if not flags.FLAGS["verbosity"].present:  # orbax and clu are chatty at INFO
        logging.set_verbosity(logging.WARNING)
    initialize_distributed()
    result = run_job(
        _CONFIG.value,
        _WORKDIR.value,
        config_file=flags.FLAGS["config"].config_filename,
        reuse_changed=_REUSE_CHANGED.value,
    )
    print("\n" + result.summary(), flush=True)
    return 0


if __name__ == "__main__":
    cli.run(main)
