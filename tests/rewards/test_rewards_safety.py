"""Untrusted model output: no code execution, bounded time, threads, processes, dead workers."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from reasonrl.rewards import (
    GradingPool,
    Status,
    grade,
    grade_batch,
    is_equivalent,
    shutdown_default_pool,
)
from reasonrl.rewards.worker import verify_pair

TIME_LIMIT_S = 5.0


@pytest.fixture(scope="module", autouse=True)
def warm_default_pool():
    """Starts the default pool's workers first: their ~1 s start-up is not part of any deadline."""
    assert is_equivalent("1", "1.0")


def _payloads(marker: str) -> list[str]:
    command = f"touch {marker}"
    return [
        f"__import__('os').system('{command}')",
        f"eval(\"__import__('os').system('{command}')\")",
        f"exec(\"import os; os.system('{command}')\")",
        f"lambda: __import__('os').system('{command}')",
        f"(lambda: __import__('os').system('{command}'))()",
        f"\\text{{__import__('os').system('{command}')}}",
        f"getattr(__import__('os'), 'system')('{command}')",
        f"x = __import__('os').system('{command}')",
    ]


def test_payload_is_live_when_evaluated(tmp_path):
    """Positive control: the payload really runs a command when something evals it (sympy's
    parse_expr does), so the tests below would notice an eval on the grading path."""
    from sympy.parsing.sympy_parser import parse_expr

    marker = tmp_path / "pwned"
    parse_expr(_payloads(str(marker))[0])
    assert marker.exists()


def test_code_injection_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    for payload in _payloads(str(marker)):
        start = time.perf_counter()
        result = grade(f"The answer is \\boxed{{{payload}}}", "0")
        assert time.perf_counter() - start < TIME_LIMIT_S
        assert not result.correct
        assert not is_equivalent(payload, "0")
        assert not is_equivalent("0", payload)  # as gold too
    assert not marker.exists()


def test_math_verify_itself_does_not_eval_payloads(tmp_path):
    """The worker's parse+verify on the raw payloads, in this process's main thread."""
    marker = tmp_path / "pwned"
    for payload in _payloads(str(marker)):
        assert verify_pair(payload, "0") is False
        assert verify_pair("0", payload) is False
    assert not marker.exists()


def _binary_junk(seed: int, size: int) -> str:
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(size)).decode("utf-8", errors="replace")


ADVERSARIAL_COMPLETIONS = [
    r"\boxed{10^{10^{10^{10}}}}",
    r"\boxed{9^{9^{9^9}}}",
    r"\boxed{2**2**2**2**2**2}",
    "so the answer is 2**2**2**2**2**2",
    r"\boxed{(10^{10})!}",
    r"\boxed{3^{10^{9}}}",
    r"\boxed{" + "9" * 100_000 + "}",
    "x" * 100_000,
    "\\boxed{" + "x^" * 50_000 + "2}",
    "\\boxed{" + "{" * 100_000,
    "\\boxed{" + "(" * 5_000 + "1" + ")" * 5_000 + "}",
    r"\boxed{\frac{1}{2}",
    "}}}}{{{{\\boxed{1}}}}}{{{{",
    _binary_junk(0, 20_000),
    "\\boxed{" + _binary_junk(1, 500).replace("}", "") + "}",
    "\x00\x01\x02 \\boxed{\x00} \ud800",
    r"\boxed{\sum_{k=1}^{10^{10}} k^k}",  # reaches sympy; stopped by the worker's deadline
]


@pytest.mark.parametrize("index", range(len(ADVERSARIAL_COMPLETIONS)))
def test_adversarial_outputs_are_graded_false_quickly(index):
    completion = ADVERSARIAL_COMPLETIONS[index]
    start = time.perf_counter()
    result = grade(completion, "5")
    elapsed = time.perf_counter() - start
    assert result.correct is False
    assert elapsed < TIME_LIMIT_S, (result, elapsed)


def test_huge_power_equal_to_gold_is_still_graded():
    assert grade(r"\boxed{10^{10^{10^{10}}}}", r"10^{10^{10^{10}}}").correct  # identical strings
    assert not grade(r"\boxed{10^{10^{10^{10}}}}", r"10^{10^{10^{11}}}").correct


def test_grading_from_eight_threads():
    cases = [
        (r"\boxed{\frac{1}{2}}", "0.5", True),
        (r"\boxed{0.5}", r"\frac{1}{3}", False),
        (r"\boxed{(1,2)}", r"\left(1, 2\right)", True),
        (r"\boxed{[1,2)}", "[1,2]", False),
        (r"\boxed{x=3}", "3", True),
        (r"\boxed{9^{9^{9^9}}}", "5", False),
        (r"\boxed{\text{(B)}}", "B", True),
        ("The answer is 1,000.", "1000", True),
    ]
    barrier = threading.Barrier(8)

    def run(thread_index: int) -> list[bool]:
        barrier.wait()
        ordered = cases[thread_index:] + cases[:thread_index]
        return [grade(c, g).correct == expected for c, g, expected in ordered * 3]

    with ThreadPoolExecutor(8) as executor:
        outcomes = list(executor.map(run, range(8)))
    assert all(all(thread_outcomes) for thread_outcomes in outcomes)


def test_killed_worker_is_replaced():
    with GradingPool(max_workers=1) as pool:
        assert pool.verify("0.5", r"\frac{1}{2}", timeout_s=10).equivalent
        (first_pid,) = pool.worker_pids()
        start = time.perf_counter()
        # The soft deadline is set beyond the hard one, so only the kill can end this request.
        reply = pool.verify(r"\sum_{k=1}^{10^{10}} k^k", "5", timeout_s=1.0, soft_timeout_s=60)
        assert time.perf_counter() - start < 2.5
        assert reply.status == "timeout" and "killed" in reply.detail
        assert pool.worker_pids() == []
        with pytest.raises(ProcessLookupError):
            _wait_until_gone(first_pid)
        assert pool.verify("0.5", r"\frac{1}{2}", timeout_s=10).equivalent
        assert pool.worker_pids() != [first_pid]


def test_stopped_worker_is_killed_and_replaced():
    """A worker stuck in C code ignores its own timer; SIGSTOP simulates that."""
    with GradingPool(max_workers=1) as pool:
        assert pool.verify("2", "2.0", timeout_s=10).equivalent
        (pid,) = pool.worker_pids()
        os.kill(pid, signal.SIGSTOP)
        reply = pool.verify("2", "2.0", timeout_s=1.0)
        assert reply.status == "timeout"
        assert pool.verify("2", "2.0", timeout_s=10).equivalent
        assert pool.worker_pids() != [pid]


def test_crashed_worker_is_reported_and_replaced():
    with GradingPool(max_workers=1) as pool:
        assert pool.verify("2", "2", timeout_s=10).equivalent
        (pid,) = pool.worker_pids()
        os.kill(pid, signal.SIGKILL)
        reply = pool.verify("2", "2", timeout_s=10)
        assert reply.status == "error"
        assert pool.verify("3", "3", timeout_s=10).equivalent


def test_soft_timeout_keeps_the_worker():
    with GradingPool(max_workers=1) as pool:
        reply = pool.verify(r"\sum_{k=1}^{10^{10}} k^k", "5", timeout_s=3.0, soft_timeout_s=0.5)
        assert reply.status == "timeout" and "interrupted" in reply.detail
        (pid,) = pool.worker_pids()
        assert pool.verify("0.5", r"\frac{1}{2}", timeout_s=10).equivalent
        assert pool.worker_pids() == [pid]


def _wait_until_gone(pid: int, timeout_s: float = 5.0) -> None:
    """Raises ProcessLookupError once ``pid`` no longer exists (or returns on timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        os.kill(pid, 0)
        time.sleep(0.05)


def test_close_stops_all_workers():
    pool = GradingPool(max_workers=2)
    pool.verify_many([("1", "1.0"), ("2", "2.0"), ("3", "3.0")], timeout_s=10)
    pids = pool.worker_pids()
    assert len(pids) == 2
    pool.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            _wait_until_gone(pid)
    with pytest.raises(RuntimeError):
        pool.verify("1", "1", timeout_s=1)


_CHILD_SCRIPT = textwrap.dedent(
    r"""
    import json, sys
    from reasonrl.rewards import get_default_pool, grade_batch
    completions = [r"\boxed{\frac{1}{2}}", r"\boxed{0.4}", "Answer: 1,000", r"\boxed{9^{9^{9^9}}}"]
    golds = ["0.5", "0.5", "1000", "5"]
    results = grade_batch(completions * 5, golds * 5, num_workers=2)
    pids = get_default_pool().worker_pids()
    print(json.dumps({"correct": [r.correct for r in results], "pids": pids}))
    """
)


def test_grading_from_several_processes_at_once():
    """Two interpreters grade concurrently, each with its own pool, which exits with it."""
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD_SCRIPT], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        report = json.loads(out.strip().splitlines()[-1])
        assert report["correct"] == [True, False, True, False] * 5
        assert report["pids"]
        for pid in report["pids"]:  # atexit shut the pool down with the process
            with pytest.raises(ProcessLookupError):
                _wait_until_gone(pid)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_forked_child_builds_its_own_pool():
    assert grade(r"\boxed{0.5}", r"\frac{1}{2}").correct  # parent's default pool is live
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            completions = [r"\boxed{0.5}", r"\boxed{0.25}"]
            results = grade_batch(completions, [r"\frac{1}{2}"] * 2)
            os.write(write_end, json.dumps([r.correct for r in results]).encode())
            shutdown_default_pool()  # os._exit skips atexit
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as reader:
        output = reader.read()
    os.waitpid(pid, 0)
    assert json.loads(output) == [True, False]
    assert grade(r"\boxed{0.5}", r"\frac{1}{2}").correct  # parent's pool still works


def test_batch_is_ordered_and_deduplicated():
    completions = [r"\boxed{\frac{1}{2}}", r"\boxed{0.5}", r"\boxed{1/3}"] * 40
    golds = ["0.5"] * len(completions)
    results = grade_batch(completions, golds, num_workers=2)
    assert [r.correct for r in results] == [True, True, False] * 40
    assert [r.answer for r in results[:3]] == [r"\frac{1}{2}", "0.5", "1/3"]
    assert {r.status for r in results} == {Status.CORRECT, Status.INCORRECT}


def test_parse_expr_guard_only_lets_arithmetic_through():
    from reasonrl.rewards.worker import guard_parse_expr

    seen = []
    guarded = guard_parse_expr(lambda expression, **kwargs: seen.append(expression) or 42)
    assert guarded("1 + 2*(3**4) / 5.5", evaluate=False) == 42
    for payload in _payloads("/nonexistent/marker") + ["x", "1 + a", "().__class__"]:
        with pytest.raises(ValueError):
            guarded(payload)
    assert seen == ["1 + 2*(3**4) / 5.5"]
