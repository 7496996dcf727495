"""One tiny end-to-end Prismatic loop: self-consistency labels from the GRPO recipe's model on
held-out addition problems, then gradient features, selection and SFT data.

    python -m reasonrl.main --config=configs/grpo.py --workdir=/tmp/prismatic_grpo
    python benchmarks/prismatic_addition_loop.py --workdir=/tmp/prismatic_grpo \
        --out=/tmp/prismatic_loop

1. ``label``: 8 samples (T=1, top_p=1) of every held-out problem (assets/synthetic/addition/
   test.jsonl, 500 problems never used in training) from ``W/rl/export``; majority vote with the
   grader's equivalence, threshold 0.5. The true sums are given as --answer_field for
   evaluation only: they never decide a label.
2. agreement share vs correctness of the majority answer (against the true sums), and the label
   accuracy and yield at each threshold;
3. ``features`` of the kept SFT records with the fixed proxy ``W/sft/export`` (not the model
   that sampled), then ``select`` half of them; G-Vendi of the labelled set, the selection and
   random halves.
Writes benchmarks/prismatic_addition_loop.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks.bench_utils import machine_description, report  # noqa: E402
from reasonrl.paths import asset  # noqa: E402
from reasonrl.sampling.problem_runs import RuntimeSettings  # noqa: E402
from reasonrl.synthetic.prismatic.feature_run import FeatureJob, run_features  # noqa: E402
from reasonrl.synthetic.prismatic.features import RenderSettings  # noqa: E402
from reasonrl.synthetic.prismatic.label_run import LabelJob, LabelSettings, run_label  # noqa: E402
from reasonrl.synthetic.prismatic.select_run import SelectJob, run_select  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", "/tmp/prismatic_grpo", "A configs/grpo.py workdir.")
_OUT = flags.DEFINE_string("out", "/tmp/prismatic_loop", "Outputs of the commands.")
_JSON = flags.DEFINE_string("json_out", "benchmarks/prismatic_addition_loop.json", "Results.")
THRESHOLDS = (0.5, 0.625, 0.75, 0.875, 1.0)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def agreement_table(items: list[dict]) -> dict:
    """Per agreement share (k/8): problems and the accuracy of their majority answer."""
    table = {}
    for share in sorted({item["agreement"] for item in items}):
        group = [item for item in items if item["agreement"] == share]
        table[f"{share:.3f}"] = {
            "problems": len(group),
            "majority_correct": float(np.mean([bool(item.get("label_correct")) for item in group])),
        }
    return table


def threshold_table(items: list[dict]) -> dict:
    """Per threshold: problems kept (unique majority, share >= t) and their label accuracy."""
    table = {}
    for threshold in THRESHOLDS:
        kept = [i for i in items if i["label"] is not None and i["agreement"] >= threshold]
        table[str(threshold)] = {
            "kept": len(kept),
            "label_accuracy": float(np.mean([i["label_correct"] for i in kept])) if kept else None,
        }
    return table


def main(argv):
    del argv
    workdir, out = Path(_WORKDIR.value), Path(_OUT.value)
    runtime = RuntimeSettings(mesh_shape=(1, -1, 1))
    tokenizer = str(workdir / "tokenizer")
    settings = LabelSettings(
        prompt_template="plain",
        chat_template="plain",
        num_samples=8,
        temperature=1.0,
        top_p=1.0,
        max_new_tokens=6,
        batch_size=50,
        threshold=0.5,
    )
    label_job = LabelJob(
        model=str(workdir / "rl" / "export"),
        tokenizer=tokenizer,
        problems=str(asset("synthetic", "addition", "test.jsonl")),
        settings=settings,
        problem_field="question",
        answer_field="answer",
    )
    labels = out / "labels.jsonl"
    label_summary = run_label(label_job, labels, runtime)
    items = read_jsonl(labels) + read_jsonl(labels.with_name(labels.name + ".rejects.jsonl"))
    features = out / "features"
    feature_job = FeatureJob(
        proxy=str(workdir / "sft" / "export"),
        tokenizer=tokenizer,
        data=str(labels),
        render=RenderSettings(chat_template="plain", max_length=32),
        id_field="id",
        dim=256,
    )
    feature_summary = run_features(feature_job, features, runtime, batch_size=64)
    budget = label_summary["kept"] // 2
    select_job = SelectJob(features=str(features), budget=budget, num_clusters=16)
    select_summary = run_select(select_job, out / "selected.jsonl")
    random = select_summary["g_vendi_random_subsets"]
    results = {
        "machine": machine_description(),
        "problems": label_summary["problems"],
        "kept": label_summary["kept"],
        "rejected_by_reason": label_summary["rejected_by_reason"],
        "label_accuracy_kept": label_summary["label_accuracy"],
        "majority_accuracy_all": float(np.mean([bool(i.get("label_correct")) for i in items])),
        "agreement_vs_correctness": agreement_table(items),
        "thresholds": threshold_table(items),
        "g_vendi_labelled": feature_summary["g_vendi"],
        "select_budget": budget,
        "g_vendi_selected": select_summary["g_vendi_selected"],
        "g_vendi_random_mean": random["mean"],
        "g_vendi_random_sd": random["sd"],
    }
    report(results, _JSON.value)


if __name__ == "__main__":
    app.run(main)
