"""The RL loop in 2 processes x 4 CPU devices against the same stage in 1 process x 8 devices
(a `data=2, fsdp=2, tensor=2` mesh either way): every process reads the same prompts, samples
its devices' rows of one global sampler program, grades only its share of the rows, and the
gathered rewards make the same metrics and the same update as one process. The RLP loop and the
sampler with the host <-> global-array helpers (`reasonrl.parallel.distributed`) likewise.
Each run takes ~20-60 s on two cores: slow suite."""

from __future__ import annotations

import json
import re
import sys

import jax
import numpy as np
import pytest

from reasonrl import data as data_lib
from reasonrl.synthetic import arithmetic
from tests.helpers import read_jsonl
from tests.parallel.test_multiprocess import probe_results, run_job_processes
from tests.rlp.test_rlp_loop import small_digit_sums

STEPS = 2
ROWS = 8  # train.batch_size 2 x rl.group_size 4
EVAL_ROWS = 4  # rl.eval_size, one greedy row each
# The stage of tests/rl/test_rl_loop.py (KL to a reference, 2 minibatches: pi_old scored), run
# by `run_job` after `initialize_distributed` has read the JAX_* variables; INFO logs on stderr
# carry the grader's "graded rows" lines.
DRIVER = """
import importlib, json, sys
from reasonrl.parallel import initialize_distributed
initialize_distributed()
from absl import logging
logging.set_verbosity(logging.INFO)
from reasonrl.job import run_job
from reasonrl.train import job_config
module, function, files, tokenizer, workdir, name, steps, eval_every = sys.argv[1:]
stage = getattr(importlib.import_module(module), function)(json.loads(files))
stage.train.update(steps=int(steps), eval_every=int(eval_every), checkpoint_every=int(steps))
config = job_config()
config.tokenizer.path = tokenizer
setattr(config.stages, name, stage)
run_job(config, workdir)
print("DONE", flush=True)
"""
GRADED = re.compile(r"grader: process (\d+) of (\d+) graded rows (\d+):(\d+) \((\d+) of (\d+)\)")


@pytest.fixture(scope="module")
def addition(tmp_path_factory):
    """(stage builder, its files, tokenizer path): tests/rl/test_rl_loop.py's stage (KL to a
    reference, 2 minibatches: pi_old scored, greedy evals) on a small addition dataset."""
    files = arithmetic.write_addition_dataset(
        tmp_path_factory.mktemp("addition"), train=400, test=20, preference_pairs=10
    )
    tokenizer = data_lib.train_sentencepiece(
        str(files["corpus"]), str(tmp_path_factory.mktemp("tok")), vocab_size=278
    )
    files = {"sft_train": str(files["sft_train"]), "test": str(files["test"])}
    return "tests.rl.test_rl_loop:rl_stage", files, tokenizer


def run_stage(job, workdir, num_processes, *, name="rl", eval_every=2):
    """Runs the stage `job` describes (builder "module:function", files, tokenizer) as stage
    `name` of a job in `num_processes` x (8 / num_processes) devices, STEPS steps, evaluating
    every `eval_every` (0: never); the results."""
    builder, files, tokenizer = job
    module, function = builder.split(":")
    argv = [sys.executable, "-c", DRIVER, module, function, json.dumps(files), tokenizer]
    argv += [str(workdir), name, str(STEPS), str(eval_every)]
    results = run_job_processes(num_processes, argv, timeout=400)
    for i, result in enumerate(results):
        assert result.returncode == 0, f"process {i} failed:\n{result.stderr[-4000:]}"
        assert "DONE" in result.stdout
    return results


def graded(result) -> list[tuple[int, ...]]:
    """(process, processes, start, stop, rows graded, rows) of each grader call of a process."""
    return [tuple(map(int, match)) for match in GRADED.findall(result.stderr)]


def comparable(workdir, stage="rl") -> dict[int, dict]:
    """metrics.jsonl by step without timings (which differ from run to run)."""
    records = {}
    for record in read_jsonl(workdir / stage / "metrics.jsonl"):
        values = {k: v for k, v in record.items() if not k.startswith(("time/", "perf/"))}
        values = {k: v for k, v in values.items() if "per_s" not in k and "_sec" not in k}
        records.setdefault(record["step"], {}).update(values)
    return records


def assert_same_job(two, one, stage="rl"):
    """Same metrics at every step (float tolerance) and the same exported params."""
    from reasonrl import models

    a, b = comparable(two, stage), comparable(one, stage)
    assert sorted(a) == sorted(b)
    for step in a:
        assert sorted(a[step]) == sorted(b[step]), step
        for key in a[step]:
            np.testing.assert_allclose(
                a[step][key], b[step][key], rtol=2e-5, atol=1e-6, err_msg=f"step {step} {key}"
            )
    params_two = models.load_hf_checkpoint(two / stage / "export")[1]
    params_one = models.load_hf_checkpoint(one / stage / "export")[1]
    x = np.concatenate([np.ravel(p) for p in jax.tree.leaves(params_two)])
    y = np.concatenate([np.ravel(p) for p in jax.tree.leaves(params_one)])
    # The reductions over 2 x 4 devices add in another order than over 1 x 8, and Adam divides
    # each gradient by its own scale, so an element whose gradient is ~0 may move by a few %
    # of a step (lr 1e-2); all but a few in a thousand agree to rounding.
    np.testing.assert_allclose(x, y, rtol=0, atol=1e-4)
    assert np.mean(np.abs(x - y) > 1e-6) < 1e-2


@pytest.fixture(scope="module")
def rl_runs(addition, tmp_path_factory):
    """(2-process workdir, its results, 1-process workdir, its results)."""
    two, one = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("one")
    return two, run_stage(addition, two, 2), one, run_stage(addition, one, 1)


@pytest.mark.slow
def test_rl_on_two_processes_matches_one_process(rl_runs):
    two, results, one, _ = rl_runs
    rollouts = {s: r for s, r in comparable(two).items() if "rollout/reward" in r}
    assert len(rollouts) == STEPS
    assert any("train/loss" in r for r in comparable(two).values())
    assert "eval/accuracy" in comparable(two)[0]
    assert "rollout reward" in results[0].stdout  # the final line, from process 0 alone
    assert "rollout reward" not in results[1].stdout
    assert_same_job(two, one)


@pytest.mark.slow
def test_each_process_grades_only_its_share(rl_runs):
    _, results, _, [single] = rl_runs
    # Per rollout step one grading of ROWS rows, per eval (before step 1 and after the last)
    # one of EVAL_ROWS rows: process i grades rows [i * n / 2, (i + 1) * n / 2) of each.
    expected_calls = [ROWS] * STEPS + [EVAL_ROWS] * 2
    for index, result in enumerate(results):
        calls = graded(result)
        assert sorted(n for *_, n in calls) == sorted(expected_calls), calls
        for process, count, start, stop, rows, total in calls:
            assert (process, count) == (index, 2)
            assert (start, stop) == (index * total // 2, (index + 1) * total // 2)
            assert rows == total // 2
    # One process grades every row itself.
    calls = graded(single)
    assert sorted(n for *_, n in calls) == sorted(expected_calls)
    assert all((start, rows) == (0, total) for _, _, start, _, rows, total in calls)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """(stage builder, its files, tokenizer path): tests/rlp/test_rlp_loop.py's RLP stage
    (2 minibatches, eval thoughts) on its small digit-sums corpus."""
    files, tokenizer = small_digit_sums(tmp_path_factory)
    files = {"rlp": str(files["rlp"]), "test": str(files["test"])}
    return "tests.rlp.test_rlp_loop:rlp_stage", files, tokenizer


@pytest.mark.slow
def test_rlp_on_two_processes_matches_one_process(digits, tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    results = run_stage(digits, two, 2, name="rlp", eval_every=0)  # no evals: faster
    run_stage(digits, one, 1, name="rlp", eval_every=0)
    steps = {s: r for s, r in comparable(two, "rlp").items() if "rlp/info_gain" in r}
    assert len(steps) == STEPS
    assert "rlp/info_gain" in results[0].stdout and "rlp/info_gain" not in results[1].stdout
    assert_same_job(two, one, "rlp")


HELPERS_PROBE = """
import json
from reasonrl.parallel import initialize_distributed
initialize_distributed()
import jax, numpy as np
from reasonrl import models, parallel
from reasonrl.parallel import distributed as dist
from reasonrl.sampling.generate import generate
mesh = parallel.make_mesh(dict(data=2, fsdp=-1, tensor=1))
config = models.get_preset("tiny-qwen3", vocab_size=128, num_layers=1, max_position_embeddings=64)
params = models.init_params(config, jax.random.key(0), mesh=mesh)
out = generate(config, params, [[1, 2, 3], [4, 5], [6, 7, 8, 9]], max_new_tokens=5,
               rng=jax.random.key(1), num_samples=3)
rows = np.arange(16 * 3, dtype=np.int32).reshape(16, 3)
placed = dist.put_global(rows, parallel.batch_sharding(mesh))
def fail():
    raise ValueError("process 0 failed here")
try:
    dist.on_main_process(fail)
    error = None
except ValueError as caught:
    error = str(caught)
print("RESULT " + json.dumps(dict(
    tokens=out.tokens.tolist(), logprob=float(out.logprobs.sum()),
    addressable=placed.is_fully_addressable, shape=list(placed.shape),
    fetched=bool((dist.fetch_global(placed) == rows).all()),
    doubled=bool((dist.fetch_global(jax.jit(lambda x: 2 * x)(placed)) == 2 * rows).all()),
    gathered=dist.allgather_objects({"index": jax.process_index()}),
    broadcast=dist.broadcast_from_main(f"from {jax.process_index()}"),
    on_main=dist.on_main_process(lambda: jax.process_index()),
    error=error, share=[dist.process_share(5).start, dist.process_share(5).stop])), flush=True)
"""


@pytest.mark.slow
def test_sampling_and_transfer_helpers_across_processes():
    """`generate` over a mesh spanning 2 processes gives every process the samples of 1 process
    x 8 devices; put_global / fetch_global / allgather_objects / on_main_process behave."""
    argv = [sys.executable, "-c", HELPERS_PROBE]
    two = probe_results(run_job_processes(2, argv, timeout=300))
    [one] = probe_results(run_job_processes(1, argv, timeout=300))
    for index, result in enumerate(two):
        assert result["tokens"] == one["tokens"]
        np.testing.assert_allclose(result["logprob"], one["logprob"], rtol=1e-5)
        assert result["addressable"] is False and result["shape"] == [16, 3]
        assert result["fetched"] and result["doubled"]
        assert result["gathered"] == [{"index": 0}, {"index": 1}]
        assert result["broadcast"] == "from 0" and result["on_main"] == 0
        assert result["error"] == "process 0 failed here"
        assert result["share"] == [[0, 3], [3, 5]][index]
    assert one["addressable"] is True and one["share"] == [0, 5]
    assert one["gathered"] == [{"index": 0}] and one["error"] == "process 0 failed here"
