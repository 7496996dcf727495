"""Scoring and the spectrum evals on a tiny random model: per-token scores against the model's
logits, candidate probabilities against a direct computation, report files, suite errors and
job-config errors."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

import reasonrl.job  # noqa: F401  (registers every loop and job eval, as a run does)
from reasonrl import data as data_lib
from reasonrl import models, parallel
from reasonrl.data import get_chat_template
from reasonrl.data.spectrum_format import SpectrumSample, render_spectrum
from reasonrl.spectrum import (
    SpectrumEvalSettings,
    SuiteError,
    evaluate_spectrum,
    load_suite,
    write_spectrum_reports,
)
from reasonrl.spectrum.evaluate import HEADLINE
from reasonrl.spectrum.scoring import score_sequences
from reasonrl.train.config import JobConfigError, validate_job

SUITE = [
    {
        "id": "t0",
        "family": "categorical",
        "description": "Name a fruit: apple 70%, pear 30%.",
        "samples": [{"output": "apple"}, {"output": "pear"}, {"output": "apple"}],
        "queries": [{"candidates": ["apple", "pear"], "probs": [0.7, 0.3]}],
    },
    {
        "id": "t1",
        "family": "other",
        "description": "From: red, blue, green. Name one that differs from the input.",
        "samples": [{"input": "red", "output": "blue"}, {"input": "blue", "output": "green"}],
        "queries": [{"input": "red", "candidates": ["blue", "green"], "probs": [0.5, 0.5]}],
    },
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    directory = tmp_path_factory.mktemp("spectrum_tokenizer")
    corpus = directory / "corpus.txt"
    corpus.write_text(
        "\n".join(json.dumps(record) for record in SUITE * 20) + "\nName a fruit pick\n"
    )
    path = data_lib.train_sentencepiece(str(corpus), str(directory), vocab_size=320)
    return data_lib.load_tokenizer(path)


@pytest.fixture(scope="module")
def model(tokenizer):
    config = models.get_preset(
        "tiny-qwen3", vocab_size=tokenizer.vocab_size, num_layers=1, max_position_embeddings=256
    )
    mesh = parallel.make_mesh(dict(data=2, fsdp=-1, tensor=1))
    return config, models.init_params(config, jax.random.key(0), mesh=mesh)


def _reference_logprobs(config, params, tokens):
    """log-softmax [T, V] of one sequence by an unsharded forward (float64)."""
    logits = models.forward(config, jax.device_get(params), np.asarray([tokens]))[0]
    return _log_softmax(logits)


def _log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_scores_match_the_models_logits(model):
    config, params = model
    rng = np.random.default_rng(0)
    sequences = [rng.integers(3, config.vocab_size, size=n).tolist() for n in (5, 40, 17)]
    scores = score_sequences(config, params, sequences, batch_size=2, chunk_size=16, top_k=5)
    for row, sequence in enumerate(sequences):
        logprobs = _reference_logprobs(config, params, sequence)[:-1]  # of tokens 1..n-1
        targets = np.asarray(sequence[1:])
        n = len(targets)
        expected = logprobs[np.arange(n), targets]
        np.testing.assert_allclose(scores.target_logprobs[row, :n], expected, atol=1e-5)
        np.testing.assert_array_equal(scores.argmax_match[row, :n], logprobs.argmax(-1) == targets)
        np.testing.assert_allclose(
            scores.top_logprobs[row, :n], -np.sort(-logprobs, axis=-1)[:, :5], atol=1e-5
        )
        top_ids = np.argsort(-logprobs, axis=-1)[:, :5]
        np.testing.assert_array_equal(scores.top_is_target[row, :n], top_ids == targets[:, None])
        assert not scores.target_logprobs[row, n:].any()


def _suite_file(tmp_path, records=SUITE):
    path = tmp_path / "suite.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def test_evaluation_and_reports(tmp_path, model, tokenizer):
    config, params = model
    settings = SpectrumEvalSettings(
        suite=_suite_file(tmp_path), num_samples=6, max_new_tokens=8, score_batch_size=4
    )
    tasks = load_suite(settings.suite)
    summary, records = evaluate_spectrum(config, params, tokenizer, tasks, settings)
    for name in HEADLINE:
        assert name in summary["metrics"]
    assert summary["steerability"]["num_outputs_geq_1"] == 3  # 2 + 1 outputs after the first
    assert summary["num_queries"] == 2 and set(summary["by_family"]) == {"categorical", "other"}

    # Candidate probabilities: the summed log-probabilities of each candidate's tokens and its
    # end-of-turn token after the prompt, from the model's logits directly.
    template = get_chat_template("chatml")
    for task, record in zip(tasks, records):
        query = task.queries[0]
        direct = []
        for candidate in query.candidates:
            rendered = render_spectrum(
                template,
                tokenizer,
                task.description,
                [SpectrumSample(candidate, query.input)],
                train_first_output=True,
            )
            logprobs = _reference_logprobs(config, params, rendered.token_ids)
            at = np.flatnonzero(rendered.output_index == 0)
            direct.append(logprobs[at - 1, rendered.token_ids[at]].sum())
        direct = np.asarray(direct)
        np.testing.assert_allclose(
            record["model_probs"], np.exp(direct) / np.exp(direct).sum(), rtol=1e-4
        )
        assert record["coverage"] == pytest.approx(np.exp(direct).sum(), rel=1e-4)
        assert len(record["samples"]) == 6

    out = tmp_path / "out"
    write_spectrum_reports(out, summary, records)
    assert json.loads((out / "summary.json").read_text())["metrics"] == pytest.approx(
        summary["metrics"], nan_ok=True
    )
    assert len((out / "samples.jsonl").read_text().splitlines()) == 2
    assert (out / "spectrum.png").stat().st_size > 0 and any((out / "tensorboard").iterdir())


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["queries"][0].update(probs=[0.5, 0.2]), "probs must be >= 0 and sum to 1"),
        (lambda r: r["queries"][0].update(candidates=["a", "a"]), "candidates repeat"),
        (lambda r: r.pop("queries"), "record has no 'queries' field"),
        (lambda r: r.update(samples=[{"input": "x"}]), "sample 0 has no 'output' field"),
    ],
)
def test_suite_errors_name_file_and_line(tmp_path, change, message):
    records = json.loads(json.dumps(SUITE))
    change(records[1])
    path = _suite_file(tmp_path, records)
    with pytest.raises(SuiteError, match=f"{path}:2: .*{message}".replace("[", r"\[")):
        load_suite(path)


def _job(**evals):
    from configs import spectrum

    config = spectrum.get_config()
    config.evals = evals
    return config


@pytest.mark.parametrize(
    "entry, message",
    [
        (dict(kind="math", stage="sft"), "evals.x.kind: unknown eval 'math'"),
        (dict(kind="spectrum", stage="rl"), "evals.x.stage: 'rl' is not a stage"),
        (dict(kind="spectrum", stage="sft", options=dict(format="xml")), "evals.x.options"),
        (dict(kind="spectrum", stage="sft", options=dict(samples=3)), "evals.x.options"),
        (dict(kind="spectrum", stage="sft", extra=1), "evals.x.extra: unknown key"),
    ],
)
def test_job_eval_config_errors_name_the_field(entry, message):
    with pytest.raises(JobConfigError, match=message):
        validate_job(_job(x=entry), num_devices=8)


def test_recipe_config_validates():
    from configs import spectrum

    validate_job(spectrum.get_config(), num_devices=8)


def test_job_eval_directories_are_fingerprinted(tmp_path):
    from configs import spectrum
    from reasonrl.job import _eval_dirs
    from reasonrl.workdir import ResultDir

    config = spectrum.get_config()
    stages = {
        name: ResultDir(f"stages.{name}", tmp_path / name, {"digest": name}, True)
        for name in config.stages
    }
    first = _eval_dirs(config, tmp_path, stages)
    assert sorted(first) == ["sft", "spectrum", "start"]
    assert first["sft"].directory == tmp_path / "evals" / "sft"
    assert not any(result.has_results for result in first.values())

    config.evals.sft.options.num_samples = 10  # the eval's options
    stages["spectrum"] = ResultDir("stages.spectrum", tmp_path / "spectrum", {"digest": "x"}, True)
    (tmp_path / "evals" / "start").mkdir(parents=True)
    (tmp_path / "evals" / "start" / "summary.json").write_text("{}")
    second = _eval_dirs(config, tmp_path, stages)
    changed = {
        n for n in first if first[n].fingerprint["digest"] != second[n].fingerprint["digest"]
    }
    assert changed == {"sft", "spectrum"}  # its options; its stage's fingerprint
    assert second["start"].has_results and not second["sft"].has_results
