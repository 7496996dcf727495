"""`python -m evals.diversity` on a tiny random checkpoint with a tiny random encoder: every
output, agreement with an independent recomputation, resume, refusal of other flags."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from evals.common import store
from reasonrl import diversity, models
from tests.diversity.tiny_bert import make_tiny_bert
from tests.evals.test_end_to_end import _env

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTPUT_FILES = ("samples.jsonl", "summary.json", "run_config.json", "diversity.png")
SUMMARY_KEYS = (
    "distinct_k",
    "utility_k",
    "hivemind_mean_similarity",
    "hivemind_fraction_above_0.8",
    "hivemind_histogram",
    "vendi",
    "distinct_1",
    "distinct_2",
    "by_category",
)


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    directory = tmp_path_factory.mktemp("encoder")
    make_tiny_bert(directory)
    return directory


def _command(checkpoint, output_dir, encoder, *extra):
    return [
        sys.executable,
        "-m",
        "evals.diversity",
        f"--checkpoint={checkpoint}",
        f"--output_dir={output_dir}",
        f"--encoder={encoder}",
        "--limit=3",
        "--num_samples=3",
        "--max_new_tokens=16",
        "--batch_size=2",
        *extra,
    ]


def _run(*args, check=True):
    result = subprocess.run(
        _command(*args), cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def diversity_run(tiny_checkpoint, tiny_encoder, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("diversity") / "out"
    _run(tiny_checkpoint, output_dir, tiny_encoder)
    return output_dir


def test_writes_every_output_consistently(diversity_run, tiny_encoder):
    for name in OUTPUT_FILES:
        assert (diversity_run / name).is_file(), name
    assert list((diversity_run / "tensorboard").glob("events.out.tfevents.*"))
    assert not (diversity_run / ".reasonrl.lock").exists()
    records = store.read_samples(diversity_run / "samples.jsonl", ("id", "sample", "completion"))
    assert len(records) == 9 and {r["id"] for r in records} == {f"curated-{i}" for i in range(3)}
    summary = json.loads((diversity_run / "summary.json").read_text())
    assert all(key in summary for key in SUMMARY_KEYS)
    assert summary["num_prompts"] == summary["num_prompts_measured"] == 3
    assert sum(summary["hivemind_histogram"]["counts"]) == 3
    assert summary["utility_quality"].startswith("none: u_i = 1")
    generation = json.loads((diversity_run / "run_config.json").read_text())["generation"]
    assert (generation["temperature"], generation["top_p"]) == (1.0, 1.0)  # noveltybench
    assert generation["prompt_template"] == "plain" and generation["num_samples"] == 3

    # Recompute each prompt from samples.jsonl with the library and the encoder directly.
    encoder = models.SentenceEncoder.from_directory(tiny_encoder)
    rows = [
        json.loads(line) for line in (diversity_run / "per_prompt.jsonl").read_text().splitlines()
    ]
    completions = {}
    for record in sorted(records, key=lambda record: record["sample"]):
        completions.setdefault(record["id"], []).append(record["completion"])
    for row in rows:
        texts = completions[row["id"]]
        embeddings = encoder.encode(texts)
        test = diversity.EQUIVALENCE_TESTS["rouge1"](texts, embeddings, None)
        classes = diversity.partition(len(texts), test)
        assert row["partition"] == classes
        assert row["distinct_k"] == len(set(classes))
        similarity = diversity.mean_pairwise_similarity(embeddings)
        assert row["hivemind_mean_similarity"] == pytest.approx(similarity, abs=1e-5)
        assert row["vendi"] == pytest.approx(diversity.vendi_score(embeddings), rel=1e-4)
    assert summary["distinct_k"] == pytest.approx(np.mean([row["distinct_k"] for row in rows]))


def test_resumes_a_torn_run_and_compares_with_another(
    diversity_run, tiny_checkpoint, tiny_encoder, tmp_path
):
    expected = (diversity_run / "samples.jsonl").read_bytes()
    first_batch = b"".join(expected.splitlines(keepends=True)[:6])  # 2 prompts x 3 samples
    shutil.copy(diversity_run / "run_config.json", tmp_path / "run_config.json")
    (tmp_path / "samples.jsonl").write_bytes(first_batch + expected[len(first_batch) :][:20])
    other = diversity_run / "samples.jsonl"
    _run(tiny_checkpoint, tmp_path, tiny_encoder, f"--compare_to={other}")
    assert (tmp_path / "samples.jsonl").read_bytes() == expected
    summary = json.loads((tmp_path / "summary.json").read_text())
    reference = json.loads((diversity_run / "summary.json").read_text())
    for key in ("distinct_k", "hivemind_mean_similarity", "vendi", "distinct_2"):
        assert summary[key] == pytest.approx(reference[key])
    # Compared with itself: 3 x 3 cross pairs per prompt, the diagonal included.
    assert -1.0 <= summary["hivemind_inter_model_similarity"] <= 1.0
    assert summary["hivemind_inter_model_similarity"] >= summary["hivemind_mean_similarity"] - 1e-6


def test_refuses_other_generation_flags(diversity_run, tiny_checkpoint, tiny_encoder, tmp_path):
    shutil.copy(diversity_run / "run_config.json", tmp_path / "run_config.json")
    result = _run(tiny_checkpoint, tmp_path, tiny_encoder, "--temperature=0.5", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--temperature: stored 1.0, now 0.5" in result.stderr
    assert not (tmp_path / "samples.jsonl").exists()


@pytest.mark.slow
def test_sigkill_then_restart_matches_uninterrupted_run(
    diversity_run,
    tiny_checkpoint,
    tiny_encoder,
    tmp_path,
):
    process = subprocess.Popen(
        _command(tiny_checkpoint, tmp_path, tiny_encoder),
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    samples = tmp_path / "samples.jsonl"
    deadline = time.monotonic() + 240
    while not (samples.is_file() and samples.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "summary.json").exists()
    _run(tiny_checkpoint, tmp_path, tiny_encoder)
    assert samples.read_bytes() == (diversity_run / "samples.jsonl").read_bytes()
    assert (tmp_path / "diversity.png").is_file()


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--benchmark={tmp}/prompts.jsonl", "prompts.jsonl:2: a record needs a 'prompt' string"),
        ("--encoder={tmp}/nowhere", "--encoder '{tmp}/nowhere': not a Hugging Face BERT"),
        ("--reward_model={checkpoint}", "--reward_model '{checkpoint}': not a reward-model"),
    ],
)
def test_bad_flags_are_one_line_errors_before_anything_is_written(
    tiny_checkpoint, tiny_encoder, tmp_path, flag, message
):
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "a"}\n{"text": "b"}\n')
    names = dict(tmp=tmp_path, checkpoint=tiny_checkpoint)
    output_dir = tmp_path / "out"
    result = _run(tiny_checkpoint, output_dir, tiny_encoder, flag.format(**names), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message.format(**names) in result.stderr
    assert not output_dir.exists()
