"""``python -m reasonrl.synthetic.prismatic {features,score,select,label} --flags``.

    label     --model=M --problems=P.jsonl --output=L.jsonl [--threshold=0.5 --num_samples=8]
    features  --proxy=X --data=L.jsonl --output=FEATURES_DIR [--dim=1024 --seed=0]
    score     --features=FEATURES_DIR [--output=score.json]
    select    --features=FEATURES_DIR --budget=500 --output=S.jsonl [--num_clusters=32]

A flag set on the command line that the subcommand does not read is refused (naming it), and
every flag is checked before anything is written. Each subcommand resumes or returns its
stored result when rerun with the same settings and refuses other settings on the same output.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from absl import flags

from reasonrl import data as data_lib
from reasonrl.data import prompt_templates
from reasonrl.sampling.completions import TRUNCATE_PROMPT_CHOICES
from reasonrl.sampling.problem_runs import RuntimeSettings, SettingsError, resolve_model_paths
from reasonrl.synthetic.prismatic.feature_run import FeatureJob, run_features, score_features
from reasonrl.synthetic.prismatic.features import RenderSettings
from reasonrl.synthetic.prismatic.label_run import LabelJob, LabelSettings, run_label
from reasonrl.synthetic.prismatic.select_run import METHODS, SelectJob, run_select
from reasonrl.workdir import atomic_write_text

FLAGS = flags.FLAGS
COMMON = ("output", "dtype", "mesh_data", "mesh_fsdp", "mesh_tensor", "limit", "id_field")
RENDER = ("chat_template", "prompt_field", "response_field", "system_prompt", "max_length")
SAMPLING = tuple(f.name for f in dataclasses.fields(LabelSettings))
FLAGS_OF = {
    "features": COMMON + RENDER + ("proxy", "tokenizer", "data", "seed", "dim", "batch_size"),
    "score": ("features", "output"),
    "select": ("features", "output", "budget", "method", "num_clusters")
    + ("kmeans_iterations", "seed", "random_subsets"),
    "label": COMMON
    + SAMPLING
    + ("model", "tokenizer", "problems", "problem_field", "answer_field")
    + ("grader_workers", "grader_timeout_s"),
}
_LABEL = LabelSettings()


def define_flags() -> None:
    """Every subcommand's flags (each reads its own, see FLAGS_OF)."""
    f = flags
    f.DEFINE_string("output", None, "features: a directory; label/select: a JSONL; score: JSON.")
    f.DEFINE_string("proxy", None, "features: the fixed proxy checkpoint (any checkpoint/export).")
    f.DEFINE_string("model", None, "label: the sampling model's checkpoint.")
    f.DEFINE_string("tokenizer", None, "Tokenizer path; default: the checkpoint directory.")
    f.DEFINE_string("data", None, "features: JSONL of prompt/response records.")
    f.DEFINE_string("features", None, "score/select: a directory written by `features`.")
    f.DEFINE_string("problems", None, "label: JSONL of problems.")
    f.DEFINE_string("problem_field", "problem", "label: field holding the problem statement.")
    f.DEFINE_string("answer_field", None, "label: optional gold answers, for evaluation only.")
    f.DEFINE_string("id_field", None, "Field holding a unique id; default: the line number.")
    f.DEFINE_integer("limit", None, "Use only the first N records.")
    f.DEFINE_enum("chat_template", "chatml", sorted(data_lib.CHAT_TEMPLATES), "Chat template.")
    f.DEFINE_string("prompt_field", "question", "Field of the user turn (read or written).")
    f.DEFINE_string("response_field", "answer", "Field of the assistant turn (read or written).")
    f.DEFINE_string("system_prompt", None, "features: system message, as the sft task's.")
    f.DEFINE_integer("max_length", 512, "features: tokens kept per example.")
    f.DEFINE_integer("seed", 0, "features: projection seed; select: k-means seed; label: sampler.")
    f.DEFINE_integer("dim", 1024, "features: projection dimension (a multiple of 32).")
    f.DEFINE_integer("batch_size", None, "Examples (features, default 16) or problems per call.")
    f.DEFINE_integer("budget", None, "select: examples to keep.")
    f.DEFINE_enum("method", "clusters", list(METHODS), "select: clusters or greedy (small sets).")
    f.DEFINE_integer("num_clusters", 32, "select: k of k-means.")
    f.DEFINE_integer("kmeans_iterations", 50, "select: Lloyd iterations.")
    f.DEFINE_integer("random_subsets", 10, "select: random subsets for the G-Vendi baseline.")
    f.DEFINE_float("threshold", _LABEL.threshold, "label: majority share of valid answers needed.")
    f.DEFINE_enum(
        "prompt_template", _LABEL.prompt_template, sorted(prompt_templates.PROMPT_TEMPLATES), ""
    )
    f.DEFINE_integer("num_samples", _LABEL.num_samples, "label: samples per problem.")
    f.DEFINE_float("temperature", _LABEL.temperature, "label: sampling temperature.")
    f.DEFINE_float("top_p", _LABEL.top_p, "label: nucleus threshold.")
    f.DEFINE_integer("top_k", _LABEL.top_k, "label: top-k (0 = off).")
    f.DEFINE_integer("max_new_tokens", _LABEL.max_new_tokens, "label: tokens per sample at most.")
    f.DEFINE_enum("truncate_prompt", "none", list(TRUNCATE_PROMPT_CHOICES), "label: see distill.")
    f.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Parameter dtype on load.")
    f.DEFINE_integer("mesh_data", 1, "Mesh 'data' axis size (-1 = fill the devices).")
    f.DEFINE_integer("mesh_fsdp", -1, "Mesh 'fsdp' axis size (-1 = fill the devices).")
    f.DEFINE_integer("mesh_tensor", 1, "Mesh 'tensor' axis size (-1 = fill the devices).")
    f.DEFINE_integer("grader_workers", None, "label: grader processes.")
    f.DEFINE_float("grader_timeout_s", 3.0, "label: time limit of one equivalence check.")


def _check_flags(command: str) -> None:
    stray = [
        name
        for name in sorted(set().union(*FLAGS_OF.values()) | {"proxy", "model"})
        if FLAGS[name].present and name not in FLAGS_OF[command]
    ]
    if stray:
        raise SettingsError(f"`{command}` does not read {', '.join('--' + s for s in stray)}")
    required = {"features": ("proxy", "data", "output"), "score": ("features",)}
    required |= {"select": ("features", "budget", "output"), "label": ("model", "problems")}
    for name in required[command] + (("output",) if command == "label" else ()):
        if FLAGS[name].value is None:
            raise SettingsError(f"`{command}` needs --{name}")


def _runtime() -> RuntimeSettings:
    return RuntimeSettings(
        mesh_shape=(FLAGS.mesh_data, FLAGS.mesh_fsdp, FLAGS.mesh_tensor),
        grader_workers=FLAGS.grader_workers,
        grader_timeout_s=FLAGS.grader_timeout_s,
    )


def _absolute(path: str) -> str:
    return str(Path(path).absolute())


def run_command(command: str) -> dict:
    """Runs one subcommand from the parsed flags; returns its summary."""
    _check_flags(command)
    if command == "score":
        summary = score_features(FLAGS.features)
        if FLAGS.output:
            atomic_write_text(FLAGS.output, json.dumps(summary, indent=2, sort_keys=True) + "\n")
        return summary
    if command == "select":
        names = FLAGS_OF["select"][2:]
        job = SelectJob(features=_absolute(FLAGS.features), **{n: FLAGS[n].value for n in names})
        return run_select(job, FLAGS.output)
    if command == "features":
        proxy, tokenizer = resolve_model_paths(
            FLAGS.proxy, FLAGS.tokenizer, checkpoint_flag="--proxy"
        )
        job = FeatureJob(
            proxy=proxy,
            tokenizer=tokenizer,
            data=_absolute(FLAGS.data),
            render=RenderSettings(**{name: FLAGS[name].value for name in RENDER}),
            **{name: FLAGS[name].value for name in ("id_field", "seed", "dim", "limit", "dtype")},
        )
        return run_features(job, FLAGS.output, _runtime(), batch_size=FLAGS.batch_size or 16)
    model, tokenizer = resolve_model_paths(FLAGS.model, FLAGS.tokenizer, checkpoint_flag="--model")
    values = {name: FLAGS[name].value for name in SAMPLING}
    values["batch_size"] = values["batch_size"] or _LABEL.batch_size
    job = LabelJob(
        model=model,
        tokenizer=tokenizer,
        problems=_absolute(FLAGS.problems),
        settings=LabelSettings(**values),
        **{n: FLAGS[n].value for n in ("problem_field", "answer_field", "id_field", "limit")},
        dtype=FLAGS.dtype,
    )
    return run_label(job, FLAGS.output, _runtime())


def main(argv: list[str]) -> None:
    """Dispatches ``argv[1]``; errors end the process with one ``error:`` line (exit 2)."""
    if len(argv) != 2 or argv[1] not in FLAGS_OF:
        raise SettingsError(
            f"usage: python -m reasonrl.synthetic.prismatic {{{','.join(FLAGS_OF)}}} --flags; "
            f"got arguments {argv[1:]}"
        )
    print(json.dumps(run_command(argv[1]), indent=2, sort_keys=True))
