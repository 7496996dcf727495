"""Spectrum evals: ``python -m evals.spectrum --checkpoint=... --output_dir=...``.

Does a model produce the output distribution a task describes, cover it, and follow in-context
samples? On held-out tasks with exact distributions (default: the suite shipped with reasonrl,
``reasonrl.spectrum.DEFAULT_SUITE``), as spectrum tuning's official code measures it
(arXiv 2510.06084, :mod:`reasonrl.spectrum.metrics`): steerability (``loss_geq_1``,
``all_acc_geq_1``, ``ece``), coverage of ``--num_samples`` samples at T = 1 (``percent_valid``,
``unique_gens_pct``, ``yield``) and distributional alignment (``js_divergence``,
``coverage``).

    python -m evals.spectrum --checkpoint=runs/spectrum/spectrum --output_dir=/tmp/spectrum
    python -m evals.spectrum --checkpoint=runs/spectrum/sft --format=chat --output_dir=/tmp/sft

``--format=spectrum`` writes tasks with the paper's roles (description / input / output), the
format a spectrum-tuned model knows; ``--format=chat`` with user / assistant turns, for
instruction-tuned models. Writes ``summary.json``, ``samples.jsonl`` (one record per query: the
samples, candidate probabilities and target), ``tensorboard/`` and ``spectrum.png``. A run takes
seconds to minutes and is not resumed: rerunning replaces the files (atomically), holding the
output directory's lock meanwhile. Bad flags, a missing checkpoint or a malformed suite line are
reported in one line (``error: ...``, exit status 2) before anything is written.
"""

from __future__ import annotations

import json

from absl import flags

import reasonrl.cli
from reasonrl import data as data_lib
from reasonrl.data.spectrum_format import FORMATS
from reasonrl.sampling import problem_runs
from reasonrl.spectrum import (
    DEFAULT_SUITE,
    SpectrumEvalSettings,
    evaluate_spectrum,
    load_suite,
    write_spectrum_reports,
)
from reasonrl.workdir import DirectoryLock

FLAGS = flags.FLAGS
_DEFAULTS = SpectrumEvalSettings()

CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Hugging Face checkpoint directory, or a reasonrl workdir.", required=True
)
TOKENIZER = flags.DEFINE_string("tokenizer", None, "Tokenizer; default: the checkpoint's.")
OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where the reports go.", required=True)
SUITE = flags.DEFINE_string("suite", str(DEFAULT_SUITE), "Held-out tasks (JSONL).")
FORMAT = flags.DEFINE_enum("format", _DEFAULTS.format, sorted(FORMATS), "Roles of the turns.")
CHAT_TEMPLATE = flags.DEFINE_enum(
    "chat_template", _DEFAULTS.chat_template, sorted(data_lib.CHAT_TEMPLATES), "Chat template."
)
NUM_SAMPLES = flags.DEFINE_integer("num_samples", _DEFAULTS.num_samples, "Samples per query.")
TEMPERATURE = flags.DEFINE_float("temperature", _DEFAULTS.temperature, "Sampling temperature.")
TOP_P = flags.DEFINE_float("top_p", _DEFAULTS.top_p, "Nucleus sampling threshold; 1 = off.")
MAX_NEW_TOKENS = flags.DEFINE_integer(
    "max_new_tokens", _DEFAULTS.max_new_tokens, "Longest sampled output."
)
SEED = flags.DEFINE_integer("seed", _DEFAULTS.seed, "Sampling seed.")
LIMIT = flags.DEFINE_integer("limit", None, "Evaluate the first N tasks only.")
MESH_FSDP = flags.DEFINE_integer("mesh_fsdp", -1, "Mesh 'fsdp' axis size (-1 = the devices).")


def settings_from_flags() -> SpectrumEvalSettings:
    try:
        return SpectrumEvalSettings(
            suite=SUITE.value,
            format=FORMAT.value,
            chat_template=CHAT_TEMPLATE.value,
            num_samples=NUM_SAMPLES.value,
            temperature=TEMPERATURE.value,
            top_p=TOP_P.value,
            max_new_tokens=MAX_NEW_TOKENS.value,
            seed=SEED.value,
            limit=LIMIT.value,
        )
    except ValueError as error:
        raise problem_runs.SettingsError(f"--{error}") from None


def main(argv):
    if len(argv) > 1:
        raise problem_runs.SettingsError(f"unexpected arguments: {argv[1:]}")
    settings = settings_from_flags()
    if settings.limit is not None and settings.limit < 1:
        raise problem_runs.SettingsError(f"--limit: must be >= 1, got {settings.limit}")
    tasks = load_suite(settings.suite, settings.limit)
    checkpoint, tokenizer = problem_runs.resolve_model_paths(CHECKPOINT.value, TOKENIZER.value)
    problem_runs.check_context(checkpoint, settings.max_new_tokens)
    with DirectoryLock(OUTPUT_DIR.value, purpose="the spectrum eval"):
        runtime = problem_runs.RuntimeSettings(mesh_shape=(1, MESH_FSDP.value, 1))
        config, params, tok = problem_runs.load_model(checkpoint, tokenizer, runtime=runtime)
        summary, records = evaluate_spectrum(config, params, tok, tasks, settings)
        summary["checkpoint"] = checkpoint
        write_spectrum_reports(
            OUTPUT_DIR.value, summary, records, title=f"spectrum eval of {checkpoint}"
        )
    print(json.dumps(summary["metrics"], indent=2))


if __name__ == "__main__":
    reasonrl.cli.run(main)
