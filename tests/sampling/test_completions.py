"""`complete` / `grade_completions`: prompts that do not fit (skipped, or cut on the left),
decoding, grading only what was sampled; and the run_store settings check and torn lines."""

import jax
import numpy as np
import pytest

from reasonrl import models, sampling
from reasonrl.rewards import GradeResult
from reasonrl.sampling import completions as completions_module
from reasonrl.sampling import run_store
from reasonrl.sampling.completions import (
    PROMPT_TOO_LONG,
    PROMPT_TOO_LONG_GRADE,
    complete,
    fit_prompts,
    grade_completions,
    prompt_budget,
)

CONFIG = models.get_preset(
    "tiny-qwen3",
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_layers=1,
    num_heads=4,
    num_kv_heads=2,
    head_dim=8,
    max_position_embeddings=24,
)
MAX_NEW = 6  # so the budget is 24 - 6 = 18 prompt tokens
STOP = 5
SAMPLING = dict(
    max_new_tokens=MAX_NEW,
    rng=jax.random.key(3),
    temperature=1.0,
    num_samples=2,
    stop_tokens=(STOP,),
    pad_id=0,
)


class WordTokenizer:
    """decode(ids) -> "t<id> t<id> ..." (all `complete` needs of a tokenizer)."""

    def decode(self, ids):
        return " ".join(f"t{token}" for token in ids)


def _prompt(length, seed):
    return np.random.RandomState(seed).randint(6, 64, length).tolist()


SHORT, LONG, OTHER = _prompt(4, 0), _prompt(30, 1), _prompt(9, 2)


@pytest.fixture(scope="module")
def params():
    return models.init_params(CONFIG, jax.random.key(0))


def test_prompt_budget_and_fit():
    assert prompt_budget(CONFIG, MAX_NEW) == 18
    assert prompt_budget(CONFIG, MAX_NEW, max_prompt_len=10) == 10
    prompts = [[1, 2, 3], list(range(1, 21)), [4]]
    fitted = fit_prompts(prompts, 5)
    assert fitted.fits.tolist() == [True, False, True]
    assert not fitted.truncated.any() and fitted.prompts[1].tolist() == prompts[1]
    cut = fit_prompts(prompts, 5, "left")
    assert cut.fits.all() and cut.truncated.tolist() == [False, True, False]
    assert cut.prompts[1].tolist() == [16, 17, 18, 19, 20] and cut.prompts[0].tolist() == [1, 2, 3]
    assert not fit_prompts(prompts, 0, "left").fits.any()  # nothing left to keep
    with pytest.raises(ValueError, match="truncate_prompt must be one of"):
        fit_prompts(prompts, 5, "right")


def _assert_rows_equal(got, expected, rows):
    for name in ("tokens", "lengths", "logprobs", "sampling_logprobs", "finish_reasons"):
        np.testing.assert_array_equal(getattr(got, name)[rows], getattr(expected, name), name)


def test_a_prompt_that_does_not_fit_is_not_sampled(params):
    got = complete(CONFIG, params, WordTokenizer(), [SHORT, LONG, OTHER], **SAMPLING)
    expected = sampling.generate(CONFIG, params, [SHORT, OTHER], **SAMPLING)
    sampled = np.array([True, True, False, False, True, True])
    _assert_rows_equal(got, expected, sampled)
    assert (got.finish_reasons[~sampled] == PROMPT_TOO_LONG).all()
    assert got.prompt_too_long.tolist() == (~sampled).tolist()
    assert (got.tokens[~sampled] == 0).all() and (got.lengths[~sampled] == 0).all()
    assert (got.logprobs[~sampled] == 0).all() and [got.texts[i] for i in (2, 3)] == ["", ""]
    assert got.prompt_lengths.tolist() == [4, 4, 30, 30, 9, 9]
    assert not got.prompt_truncated.any()
    assert got.truncated.tolist() == (got.finish_reasons == "length").tolist()
    for row in np.flatnonzero(sampled):  # a final stop token is not rendered
        end = got.lengths[row] - (got.finish_reasons[row] == "stop")
        assert got.texts[row] == WordTokenizer().decode(got.tokens[row, :end].tolist())


def test_left_truncation_samples_the_prompts_last_tokens(params):
    got = complete(
        CONFIG, params, WordTokenizer(), [SHORT, LONG], truncate_prompt="left", **SAMPLING
    )
    _assert_rows_equal(
        got, sampling.generate(CONFIG, params, [SHORT, LONG[-18:]], **SAMPLING), slice(None)
    )
    assert got.prompt_truncated.tolist() == [False, False, True, True]
    assert got.prompts[1].tolist() == LONG[-18:] and got.prompt_lengths.tolist() == [4, 4, 18, 18]
    assert not got.prompt_too_long.any()


def test_a_batch_of_prompts_that_all_do_not_fit_samples_nothing(params, monkeypatch):
    monkeypatch.setattr(completions_module, "generate", None)  # never called
    got = complete(CONFIG, params, WordTokenizer(), [LONG, LONG], **SAMPLING)
    assert got.tokens.shape == got.logprobs.shape == (4, MAX_NEW)
    assert got.prompt_too_long.all() and got.texts == [""] * 4
    assert grade_completions(got, ["1", "2"], grader=None) == [PROMPT_TOO_LONG_GRADE] * 4


def test_grader_sees_only_the_sampled_rows(params):
    got = complete(CONFIG, params, WordTokenizer(), [LONG, SHORT], **SAMPLING)
    calls = []

    def grader(texts, golds):
        calls.append((list(texts), list(golds)))
        return [GradeResult("7", True, "correct")] * len(texts)

    grades = grade_completions(got, ["1", "7"], grader)
    assert calls == [(got.texts[2:], ["7", "7"])]
    assert grades[:2] == [PROMPT_TOO_LONG_GRADE] * 2
    assert grades[0].status == PROMPT_TOO_LONG and not grades[0].correct
    assert [grade.correct for grade in grades[2:]] == [True, True]


def test_check_settings_names_each_difference():
    run_store.check_settings({"a": 1}, {"a": 1}, what="w", remedy="r")
    with pytest.raises(
        run_store.ConfigMismatchError,
        match=r"^out differs; rerun with the stored values or use another:\n"
        r"  --a: stored 1, now 2\n  --b: stored None, now 'x'$",
    ):
        run_store.check_settings(
            {"a": 1}, {"a": 2, "b": "x"}, what="out differs", remedy="use another"
        )


def test_a_run_stored_before_truncate_prompt_existed_resumes_with_its_default():
    run_store.check_settings({"a": 1}, {"a": 1, "truncate_prompt": "none"}, what="w", remedy="r")
    with pytest.raises(
        run_store.ConfigMismatchError, match=r"--truncate_prompt: stored 'none', now 'left'"
    ):
        run_store.check_settings(
            {"a": 1}, {"a": 1, "truncate_prompt": "left"}, what="w", remedy="r"
        )


def test_cut_torn_tail_and_synced_appends(tmp_path):
    path = tmp_path / "lines.jsonl"
    assert run_store.append_synced(path, run_store.json_lines([{"a": "é"}])) == 12  # é: 2 bytes
    run_store.append_synced(path, b'{"b": ')
    assert run_store.cut_torn_tail(path) == '{"a": "é"}\n'.encode()
    assert path.read_bytes() == '{"a": "é"}\n'.encode()
