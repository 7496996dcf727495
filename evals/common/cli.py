"""The absl flags both eval binaries share, and their ``main``.

Sampling flags (``--temperature``, ``--top_p``, ``--top_k``, ``--max_new_tokens``,
``--num_samples``, ``--prompt_template``) default to unset: an explicit value wins, else the
``--protocol`` preset's value, else ``protocols.DEFAULT_SETTINGS``. ``--truncate_prompt``
(none | left) decides what happens to a prompt that leaves no room for ``--max_new_tokens``
(:mod:`evals.common.runner`); like the sampling flags it is a generation setting.

The binaries run under ``reasonrl.cli``: a bad flag value, a missing checkpoint or tokenizer, a
locked or mismatched output directory, a corrupt ``samples.jsonl`` line or a full disk is
reported in one line ``error: ...`` with exit status 2, before anything is written where the
flags are at fault.

Several processes (hosts) run one eval when the environment describes the job
(``JAX_COORDINATOR_ADDRESS`` + ``JAX_NUM_PROCESSES`` + ``JAX_PROCESS_ID``, Slurm...: see
:mod:`reasonrl.parallel.distributed`); :mod:`evals.common.runner` says how they share it.
Process 0 prints the summary.
"""

from __future__ import annotations

import json

from absl import flags, logging

from evals.common import protocols, runner
from reasonrl import data as data_lib
from reasonrl import rewards
from reasonrl.data import prompt_templates
from reasonrl.parallel.distributed import initialize_distributed, is_main_process
from reasonrl.sampling import TRUNCATE_PROMPT_CHOICES, problem_runs

FLAGS = flags.FLAGS


def define_flags(kind: str = "math", *, default_protocol: str | None = None) -> None:
    """Defines the shared flags (each binary adds --benchmark itself).

    Args:
        kind: the binary's protocols (``protocols.protocol_names(kind)``); "math" binaries also
            get the grader flags.
        default_protocol: the --protocol used when none is given.
    """
    flags.DEFINE_string(
        "checkpoint",
        None,
        "Hugging Face checkpoint directory, or a reasonrl "
        "workdir (its last finished stage's export/ is used).",
        required=True,
    )
    flags.DEFINE_string(
        "tokenizer",
        None,
        "Tokenizer file or directory; default: the "
        "checkpoint directory (tokenizer.json / tokenizer.model / *.model).",
    )
    flags.DEFINE_string(
        "output_dir",
        None,
        "Where samples.jsonl, summary.json, run_config.json, "
        "tensorboard/ and the PNG plot go; rerun to resume.",
        required=True,
    )
    flags.DEFINE_enum(
        "protocol",
        default_protocol,
        protocols.protocol_names(kind),
        "Published settings preset; explicit sampling flags override it.",
    )
    flags.DEFINE_enum(
        "prompt_template",
        None,
        sorted(prompt_templates.PROMPT_TEMPLATES),
        "How a problem becomes the prompt (see reasonrl/data/prompt_templates.py).",
    )
    flags.DEFINE_enum(
        "chat_template",
        "chatml",
        sorted(data_lib.CHAT_TEMPLATES),
        "reasonrl.data chat template the prompt messages are rendered with.",
    )
    flags.DEFINE_integer("num_samples", None, "Samples per problem (n).")
    flags.DEFINE_float("temperature", None, "Sampling temperature; 0 = greedy.")
    flags.DEFINE_float("top_p", None, "Nucleus sampling threshold; 1 = off.")
    flags.DEFINE_integer("top_k", None, "Top-k filtering; 0 = off.")
    flags.DEFINE_integer("max_new_tokens", None, "Generated tokens per sample at most.")
    flags.DEFINE_enum(
        "truncate_prompt",
        "none",
        list(TRUNCATE_PROMPT_CHOICES),
        "A prompt leaving no room for max_new_tokens within the model's context: "
        "none = record its samples as prompt_too_long (incorrect); left = keep "
        "its last max_position_embeddings - max_new_tokens tokens.",
    )
    flags.DEFINE_integer("limit", None, "Evaluate only the first N problems (default: all).")
    flags.DEFINE_integer("batch_size", 8, "Prompts per generate call (each with num_samples).")
    flags.DEFINE_integer(
        "decode_slots",
        0,
        "Rows the decode engine samples at once (0: its default, 16 on CPU, 256 on GPU/TPU); "
        "the samples do not depend on it.",
    )
    flags.DEFINE_integer("seed", 0, "PRNG seed of the sampler.")
    flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Parameter dtype on load.")
    flags.DEFINE_integer("mesh_data", 1, "Mesh 'data' axis size (-1 = fill the devices).")
    flags.DEFINE_integer("mesh_fsdp", -1, "Mesh 'fsdp' axis size (-1 = fill the devices).")
    flags.DEFINE_integer("mesh_tensor", 1, "Mesh 'tensor' axis size (-1 = fill the devices).")
    if kind != "math":
        return
    flags.DEFINE_integer("grader_workers", None, "Grader processes (default: the grader's).")
    flags.DEFINE_float(
        "grader_timeout_s",
        rewards.DEFAULT_TIMEOUT_S,
        "Hard time limit of one answer-equivalence check.",
    )


def settings_from_flags(
    benchmark: str,
) -> tuple[runner.GenerationSettings, problem_runs.RuntimeSettings]:
    """Resolves the parsed flags (protocol, checkpoint, tokenizer) into run settings.

    Raises:
        problem_runs.SettingsError: a flag value that cannot work (the message names it).
    """
    sampling = protocols.resolve_settings(
        FLAGS.protocol, benchmark, {name: FLAGS[name].value for name in protocols.DEFAULT_SETTINGS}
    )
    checkpoint, tokenizer = problem_runs.resolve_model_paths(FLAGS.checkpoint, FLAGS.tokenizer)
    generation = runner.GenerationSettings(
        checkpoint=checkpoint,
        tokenizer=tokenizer,
        benchmark=benchmark,
        prompt_template=sampling["prompt_template"],
        chat_template=FLAGS.chat_template,
        num_samples=int(sampling["num_samples"]),
        temperature=float(sampling["temperature"]),
        top_p=float(sampling["top_p"]),
        top_k=int(sampling["top_k"]),
        max_new_tokens=int(sampling["max_new_tokens"]),
        seed=FLAGS.seed,
        limit=FLAGS.limit,
        batch_size=FLAGS.batch_size,
        dtype=FLAGS.dtype,
        truncate_prompt=FLAGS.truncate_prompt,
    )
    runtime = problem_runs.RuntimeSettings(
        mesh_shape=(FLAGS.mesh_data, FLAGS.mesh_fsdp, FLAGS.mesh_tensor),
        grader_workers=FLAGS.grader_workers,
        grader_timeout_s=FLAGS.grader_timeout_s,
        decode_slots=FLAGS.decode_slots,
    )
    return generation, runtime


def main_for(benchmark: str, argv: list[str]) -> None:
    """Runs the eval of ``benchmark`` with the parsed flags and prints the summary."""
    if len(argv) > 1:
        raise problem_runs.SettingsError(f"unexpected arguments: {argv[1:]}")
    initialize_distributed()  # one of several processes (hosts)? before jax uses a device
    generation, runtime = settings_from_flags(benchmark)
    logging.info("generation settings: %s", generation)
    summary = runner.run_eval(generation, runtime, FLAGS.output_dir)
    if is_main_process():  # one job, one summary on stdout
        print(json.dumps(summary, indent=2))
