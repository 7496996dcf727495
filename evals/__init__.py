"""Benchmark evaluations of reasonrl (or any Hugging Face) checkpoints.

Binaries (absl; shared code in :mod:`evals.common`):

    python -m evals.math500 --checkpoint=runs/demo --protocol=r1 --output_dir=/tmp/math500
    python -m evals.aime --benchmark=aime24 --checkpoint=... --protocol=r1 --output_dir=...
    python -m evals.diversity --checkpoint=... --output_dir=...    # NoveltyBench, hivemind

Each writes ``samples.jsonl``, ``summary.json``, ``run_config.json``, TensorBoard scalars and a
PNG plot into ``--output_dir`` (one run at a time: a lock) and resumes an interrupted run from
``samples.jsonl``; the user's mistakes are one line ``error: ...`` with exit status 2.
"""
