"""The ``select`` subcommand: cluster the gradient features, take a budget, write SFT JSONL.

    features DIR (from `features`) + its data file  ->  OUT.jsonl (the selected records,
    verbatim, in data order: the sft task reads them with the fields the features used)
    + OUT.jsonl.summary.json

``--method=clusters`` (default): k-means++ / Lloyd k-means (``kmeans``) on the valid features,
then the water-filling budget rule of :mod:`~reasonrl.synthetic.prismatic.select`.
``--method=greedy``: the reference selector (add the example that most raises G-Vendi), for
small sets only (it holds N d x d outer products; larger inputs are refused).
The summary holds the G-Vendi of the input and of the selection, and the mean, sd, min and max
over ``--random_subsets`` random subsets of the same size. The data file must be the one the
features were computed from (same sha256). Settings are stored in ``OUT.jsonl.state.jsonl``; a
rerun with the same ones returns the stored summary, one with others is refused.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np

from reasonrl.sampling.problem_runs import SettingsError, check_at_least_one
from reasonrl.synthetic import distill_store
from reasonrl.synthetic.prismatic import select as select_lib
from reasonrl.synthetic.prismatic.feature_store import load_features
from reasonrl.synthetic.prismatic.gvendi import g_vendi
from reasonrl.synthetic.prismatic.kmeans import kmeans
from reasonrl.synthetic.prismatic.records import file_digest, load_records
from reasonrl.workdir import DirectoryLock

METHODS = ("clusters", "greedy")
# The greedy selector holds N x d x d float32 outer products: refuse inputs beyond this.
GREEDY_MAX_BYTES = 2 << 30


@dataclasses.dataclass(frozen=True)
class SelectJob:
    """Attributes: features (a feature directory), budget (examples to keep), method,
    num_clusters and kmeans_iterations (clusters method), seed (k-means++ and the order inside a
    cluster), random_subsets (size of the random baseline)."""

    features: str
    budget: int
    method: str = "clusters"
    num_clusters: int = 32
    kmeans_iterations: int = 50
    seed: int = 0
    random_subsets: int = 10

    def __post_init__(self):
        check_at_least_one(
            budget=self.budget,
            num_clusters=self.num_clusters,
            kmeans_iterations=self.kmeans_iterations,
            random_subsets=self.random_subsets,
        )
        if self.method not in METHODS:
            raise SettingsError(f"--method: unknown {self.method!r}; known: {list(METHODS)}")


def check_feasible(job: SelectJob, features: np.ndarray, valid: np.ndarray) -> None:
    """Raises SettingsError, naming the flag, when the features cannot meet the job."""
    valid_count = int(valid.sum())
    if job.budget > valid_count:
        raise SettingsError(f"--budget={job.budget} exceeds the {valid_count} valid examples")
    if job.method == "clusters" and job.num_clusters > valid_count:
        raise SettingsError(
            f"--num_clusters={job.num_clusters} exceeds the {valid_count} valid examples"
        )
    size = features.shape[0] * features.shape[1] ** 2 * 4
    if job.method == "greedy" and size > GREEDY_MAX_BYTES:
        raise SettingsError(
            f"--method=greedy needs {size / 2**30:.1f} GiB for {features.shape[0]} examples "
            f"of dim {features.shape[1]} (limit {GREEDY_MAX_BYTES / 2**30:.0f} GiB); use "
            f"--method=clusters"
        )


def _selected_indices(job: SelectJob, features: np.ndarray, valid: np.ndarray, ids) -> dict:
    """{"indices": sorted int [budget], ...method details} (see the module docstring)."""
    if job.method == "greedy":
        order = select_lib.greedy_selection(features, valid, budget=job.budget)
        return {"indices": np.sort(np.asarray(order))}
    result = kmeans(
        features,
        valid,
        num_clusters=job.num_clusters,
        key=jax.random.key(job.seed),
        iterations=job.kmeans_iterations,
    )
    assignment = np.asarray(result.assignment)
    sizes = np.bincount(assignment[assignment >= 0], minlength=job.num_clusters)
    quotas = select_lib.cluster_quotas(sizes, job.budget)
    priorities = select_lib.example_priorities(ids, job.seed)
    return {
        "indices": select_lib.select_by_clusters(assignment, quotas, priorities),
        "cluster_sizes": sizes.tolist(),
        "cluster_quotas": quotas.tolist(),
        "kmeans_inertia": float(result.inertia),
    }


def run_select(job: SelectJob, output: str | Path) -> dict:
    """Writes ``output`` (selected records) and its summary; returns the summary.

    Raises:
        FeatureStoreError, RecordFileError: unreadable features or data.
        SettingsError: a budget or cluster count the valid examples cannot meet, a data file
            changed since the features were computed.
        run_store.ConfigMismatchError: ``output`` was made with other settings.
    """
    output = Path(output)
    feature_set = load_features(job.features)
    stored = feature_set.config
    if file_digest(stored["data"]) != stored["data_sha256"]:
        raise SettingsError(
            f"--features: {stored['data']} changed since the features in {job.features} were "
            f"computed; rerun `features`"
        )
    fields = [
        (stored["prompt_field"], "--prompt_field"),
        (stored["response_field"], "--response_field"),
    ]
    ids, records = load_records(
        stored["data"], flag="--data", fields=fields, id_field=stored["id_field"]
    )
    expected = len(ids) if stored["limit"] is None else min(stored["limit"], len(ids))
    if len(feature_set.ids) != expected:
        raise SettingsError(
            f"--features: {job.features} holds {len(feature_set.ids)} of its {expected} "
            f"examples; finish it by rerunning `features` first"
        )
    by_id = dict(zip(ids, records))
    valid = feature_set.valid
    check_feasible(job, feature_set.features, valid)
    config = {
        **dataclasses.asdict(job),
        "features_state_sha256": file_digest(Path(job.features) / "state.jsonl"),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    lock = DirectoryLock(output.parent, purpose="the selection", lock_name=f".{output.name}.lock")
    with lock:
        if distill_store.open_output(output, config):  # finished with these settings
            return json.loads(distill_store.summary_path(output).read_text())
        features = feature_set.features
        chosen = _selected_indices(job, features, valid, feature_set.ids)
        indices = chosen.pop("indices")
        selected = [by_id[feature_set.ids[i]] for i in indices]
        random_scores = np.asarray(
            select_lib.random_subset_scores(
                features,
                valid,
                jax.random.key(job.seed + 1),
                budget=job.budget,
                num_subsets=job.random_subsets,
            ),
            np.float64,
        )
        mask = np.zeros(len(valid), bool)
        mask[indices] = True
        summary = {
            "output": str(output),
            "features": job.features,
            "method": job.method,
            "examples": len(valid),
            "valid_examples": int(valid.sum()),
            "selected": len(indices),
            "g_vendi_input": g_vendi(features, valid),
            "g_vendi_selected": g_vendi(features, mask),
            "g_vendi_random_subsets": {
                "count": job.random_subsets,
                "mean": float(random_scores.mean()),
                "sd": float(random_scores.std(ddof=1)) if len(random_scores) > 1 else 0.0,
                "min": float(random_scores.min()),
                "max": float(random_scores.max()),
            },
            **chosen,
        }
        distill_store.append_batch(
            output, 0, selected, {"selected": len(selected)}, count_fields=("selected",)
        )
        distill_store.write_summary(output, summary)
    return summary
