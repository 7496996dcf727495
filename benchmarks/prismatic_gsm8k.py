"""G-Vendi selection on GSM8K train with the demo's pretrain export as the fixed proxy.

    python -m reasonrl.main --config=configs/demo.py --workdir=/tmp/prismatic_demo
    python benchmarks/prismatic_gsm8k.py --proxy=/tmp/prismatic_demo/pretrain/export \
        --tokenizer=/tmp/prismatic_demo/tokenizer --workdir=/tmp/prismatic_bench --pool=2000

1. gradient features (d=1024, seed 0, sft rendering with ChatML, max_length 512) of the first
   ``--pool`` GSM8K train examples, timed (wall clock and peak resident memory of the process);
2. ``select`` of ``--budget`` examples by k-means + the water-filling budget rule, for each
   ``--clusters`` value, against 10 random subsets of the same size;
3. writes benchmarks/prismatic_gsm8k.json and a 2-D view (PCA of the features, clusters and the
   selection) benchmarks/prismatic_gsm8k.png.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks.bench_utils import machine_description, report  # noqa: E402
from reasonrl.paths import asset  # noqa: E402
from reasonrl.sampling.problem_runs import RuntimeSettings  # noqa: E402
from reasonrl.synthetic.prismatic.feature_run import FeatureJob, run_features  # noqa: E402
from reasonrl.synthetic.prismatic.feature_store import load_features  # noqa: E402
from reasonrl.synthetic.prismatic.features import RenderSettings  # noqa: E402
from reasonrl.synthetic.prismatic.select_run import SelectJob, run_select  # noqa: E402

_PROXY = flags.DEFINE_string("proxy", None, "The demo's pretrain export.", required=True)
_TOKENIZER = flags.DEFINE_string("tokenizer", None, "Its tokenizer.", required=True)
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/prismatic_bench", "Outputs of the commands.")
_POOL = flags.DEFINE_integer("pool", 2000, "GSM8K train examples to featurise (first N).")
_BUDGET = flags.DEFINE_integer("budget", 500, "Examples to select.")
_CLUSTERS = flags.DEFINE_list("clusters", ["16", "32", "64"], "k-means cluster counts to try.")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Examples per feature call.")
_JSON = flags.DEFINE_string("json_out", "benchmarks/prismatic_gsm8k.json", "Results file.")
_PNG = flags.DEFINE_string("png_out", "benchmarks/prismatic_gsm8k.png", "2-D view.")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False, "Only redraw the figure from a finished run.")


def feature_pass(workdir: Path) -> dict:
    job = FeatureJob(
        proxy=_PROXY.value,
        tokenizer=_TOKENIZER.value,
        data=str(asset("corpus", "gsm8k_train.jsonl")),
        render=RenderSettings(max_length=512),
        limit=_POOL.value,
    )
    runtime = RuntimeSettings(mesh_shape=(1, -1, 1))
    began = time.perf_counter()
    summary = run_features(job, workdir / "features", runtime, batch_size=_BATCH.value)
    seconds = time.perf_counter() - began
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "pool_examples": summary["examples"],
        "valid_examples": summary["valid_examples"],
        "truncated_examples": summary["truncated_examples"],
        "g_vendi_pool": summary["g_vendi"],
        "feature_pass_seconds": seconds,
        "feature_seconds_per_1k": seconds / summary["examples"] * 1000,
        "peak_rss_mib": peak_mib,
    }


def plot(workdir: Path, selections: dict, png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stored = load_features(workdir / "features")
    x = stored.features[stored.valid]
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    k, summary = next(iter(selections.items()))
    selected = {r["question"] for r in map(json.loads, open(summary["output"]))}
    questions = [json.loads(line)["question"] for line in open(stored.config["data"])]
    ids = np.asarray(stored.ids)[stored.valid]  # 1-based line numbers
    chosen = np.asarray([questions[int(i) - 1] in selected for i in ids])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    axes[0].scatter(xy[:, 0], xy[:, 1], s=3, c="lightgray", label="pool")
    axes[0].scatter(xy[chosen, 0], xy[chosen, 1], s=4, c="tab:red", label=f"selected (k={k})")
    axes[0].set_title("GSM8K gradient features, PCA")
    axes[0].legend()
    names = [f"k={k}" for k in selections]
    values = [s["g_vendi_selected"] for s in selections.values()]
    rand = next(iter(selections.values()))["g_vendi_random_subsets"]
    axes[1].bar(names, values, color="tab:red")
    axes[1].axhline(rand["mean"], color="k", label="random mean")
    axes[1].axhspan(rand["mean"] - rand["sd"], rand["mean"] + rand["sd"], color="gray", alpha=0.3)
    axes[1].set_ylabel(f"G-Vendi of {_BUDGET.value} examples")
    axes[1].set_ylim(min(values + [rand["min"]]) * 0.95, max(values + [rand["max"]]) * 1.03)
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def main(argv):
    del argv
    workdir = Path(_WORKDIR.value)
    if _PLOT_ONLY.value:
        outputs = {int(k): workdir / f"selected_k{k}.jsonl" for k in _CLUSTERS.value}
        plot(
            workdir,
            {k: json.loads(Path(f"{p}.summary.json").read_text()) for k, p in outputs.items()},
            _PNG.value,
        )
        return
    results = {"machine": machine_description(), **feature_pass(workdir)}
    selections = {}
    for k in map(int, _CLUSTERS.value):
        job = SelectJob(features=str(workdir / "features"), budget=_BUDGET.value, num_clusters=k)
        selections[k] = run_select(job, workdir / f"selected_k{k}.jsonl")
        results[f"g_vendi_selected_k{k}"] = selections[k]["g_vendi_selected"]
    random = selections[int(_CLUSTERS.value[0])]["g_vendi_random_subsets"]
    results.update(
        {f"g_vendi_random_{name}": random[name] for name in ("mean", "sd", "min", "max")}
    )
    results["budget"] = _BUDGET.value
    report(results, _JSON.value)
    plot(workdir, selections, _PNG.value)


if __name__ == "__main__":
    app.run(main)
