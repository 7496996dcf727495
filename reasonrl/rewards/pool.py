"""A pool of grading worker processes with a hard time limit per request.

Why processes: math-verify (sympy) can run for a very long time on some inputs, and its own
timeouts use ``signal.alarm``, which only works on a process's main thread. A request is therefore
sent to a worker process (:mod:`reasonrl.rewards.worker`) and the caller waits on the pipe with
a deadline; a worker that has not answered by then is SIGKILLed and later replaced. A request
can never take more than ``timeout_s`` of the caller's time once a worker is assigned to it.

Design:

* Workers are plain subprocesses running ``worker.py`` as a script (not ``multiprocessing``), so
  they never re-import the caller's ``__main__`` (a training script importing JAX) and work the
  same from scripts, notebooks, threads and forked processes. They talk JSON lines over their
  stdin/stdout; nothing is unpickled.
* Two deadlines: the worker interrupts itself at ``soft_timeout_s`` (default 80% of
  ``timeout_s``) and answers ``"timeout"``, staying alive; the parent kills it at ``timeout_s``
  if it has not answered (stuck in C code, crashed, stopped).
* Workers start lazily, up to ``max_workers``, and are reused. A killed, crashed or erroring
  worker is discarded and a fresh one is started by the next request that needs it (start-up,
  about a second, is not counted against any request's deadline). Each worker is also recycled
  after ``max_tasks_per_worker`` requests to bound memory growth.
* Thread safety: an idle list guarded by a condition variable; each request holds one worker
  exclusively. Any number of threads may call :meth:`GradingPool.verify` concurrently; when all
  workers are busy a caller waits for one (that wait is not part of ``timeout_s``).
* Processes: :func:`get_default_pool` keeps one pool per process id, so a forked child builds its
  own pool instead of sharing its parent's pipes. The default pool is closed at exit (atexit),
  and workers also exit on their own when their stdin closes or their parent dies.

POSIX only (pipes are polled with ``poll``; workers use ``setitimer`` and ``RLIMIT_AS``).
"""

from __future__ import annotations

import atexit
import json
import math
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

__all__ = [
    "GraderUnavailableError",
    "GradingPool",
    "WorkerReply",
    "default_num_workers",
    "get_default_pool",
    "shutdown_default_pool",
]

_WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")
_SOFT_TIMEOUT_FRACTION = 0.8


class GraderUnavailableError(RuntimeError):
    """A worker process could not be started (a broken installation, not a model output)."""


class WorkerReply(NamedTuple):
    """What the pool says about one (prediction, gold) pair.

    ``status`` is ``"ok"`` (``equivalent`` is meaningful), ``"timeout"`` (soft or hard deadline
    passed) or ``"error"`` (the worker raised or died; ``detail`` says what happened).
    """

    status: str
    equivalent: bool = False
    detail: str = ""


def default_num_workers() -> int:
    """One worker per CPU core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


class _WorkerDied(Exception):
    pass


class _Worker:
    """One worker subprocess and its line-oriented pipe protocol."""

    def __init__(self, memory_limit_mb: int):
        self.process = subprocess.Popen(
            [sys.executable, _WORKER_SCRIPT, str(int(memory_limit_mb))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self._stdout_fd = self.process.stdout.fileno()
        self._poller = select.poll()
        self._poller.register(self._stdout_fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        self._buffer = bytearray()
        self._next_id = 0
        self.tasks_done = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read_message(self, deadline: float) -> dict | None:
        """Next JSON line from the worker; ``None`` if ``deadline`` passes first."""
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                message = json.loads(line)
                if not isinstance(message, dict):
                    raise ValueError(f"expected a JSON object, got {line[:100]!r}")
                return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            # poll, not select: select fails on descriptors >= 1024 (busy training processes).
            if not self._poller.poll(max(1, math.ceil(remaining * 1000))):
                continue
            chunk = os.read(self._stdout_fd, 1 << 16)
            if not chunk:
                raise _WorkerDied(f"worker {self.pid} exited (code {self.process.poll()})")
            self._buffer.extend(chunk)

    def wait_ready(self, timeout_s: float) -> None:
        try:
            message = self._read_message(time.monotonic() + timeout_s)
        except (_WorkerDied, ValueError) as error:
            raise GraderUnavailableError(f"grading worker failed to start: {error}") from error
        if message is None or not message.get("ready"):
            raise GraderUnavailableError(
                f"grading worker did not become ready within {timeout_s:.0f} s: {message!r}"
            )

    def request(
        self, prediction: str, gold: str, timeout_s: float, soft_timeout_s: float
    ) -> dict | None:
        """Sends one pair; returns the reply, or ``None`` when ``timeout_s`` passes first."""
        self._next_id += 1
        request_id = self._next_id
        line = json.dumps(
            {
                "id": request_id,
                "prediction": prediction,
                "gold": gold,
                "soft_timeout_s": soft_timeout_s,
            }
        )
        deadline = time.monotonic() + timeout_s
        try:
            self.process.stdin.write(line.encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise _WorkerDied(f"worker {self.pid} is gone: {error}") from error
        try:
            reply = self._read_message(deadline)
        except ValueError as error:
            raise _WorkerDied(f"worker {self.pid} sent garbage: {error}") from error
        if reply is not None and reply.get("id") != request_id:
            raise _WorkerDied(
                f"worker {self.pid} answered request {reply.get('id')}, not {request_id}"
            )
        self.tasks_done += 1
        return reply

    def stop(self, grace_s: float = 0.0) -> None:
        """Closes stdin (the worker exits) and kills it if it is still there after ``grace_s``."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        finally:
            self.process.stdout.close()


class GradingPool:
    """Lazily started, reusable pool of grading workers (see the module docstring).

    Args:
        max_workers: most worker processes alive at once (default :func:`default_num_workers`).
        memory_limit_mb: address-space limit of each worker (``RLIMIT_AS``); 0 disables it.
        startup_timeout_s: how long a new worker may take to import and warm up.
        max_tasks_per_worker: a worker is replaced after this many requests.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        memory_limit_mb: int = 1024,
        startup_timeout_s: float = 60.0,
        max_tasks_per_worker: int = 5000,
    ):
        self._max_workers = max(1, max_workers or default_num_workers())
        self._memory_limit_mb = memory_limit_mb
        self._startup_timeout_s = startup_timeout_s
        self._max_tasks_per_worker = max_tasks_per_worker
        self._condition = threading.Condition()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._starting = 0
        self._closed = False

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def ensure_capacity(self, num_workers: int) -> None:
        """Allows at least ``num_workers`` concurrent workers (never shrinks)."""
        with self._condition:
            if num_workers > self._max_workers:
                self._max_workers = num_workers
                self._condition.notify_all()

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring and tests)."""
        with self._condition:
            return sorted(worker.pid for worker in self._all)

    def _acquire(self) -> _Worker:
        with self._condition:
            while True:
                if self._closed:
                    raise RuntimeError("GradingPool is closed")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) + self._starting < self._max_workers:
                    self._starting += 1
                    break
                self._condition.wait()
        worker = None
        try:
            worker = _Worker(self._memory_limit_mb)
            worker.wait_ready(self._startup_timeout_s)
        except BaseException:
            if worker is not None:
                worker.process.kill()
                worker.stop()
            with self._condition:
                self._starting -= 1
                self._condition.notify()
            raise
        with self._condition:
            self._starting -= 1
            if self._closed:
                worker.stop()
                raise RuntimeError("GradingPool is closed")
            self._all.add(worker)
        return worker

    def _release(self, worker: _Worker, *, healthy: bool) -> None:
        keep = healthy and worker.tasks_done < self._max_tasks_per_worker
        with self._condition:
            if keep and not self._closed:
                self._idle.append(worker)
                self._condition.notify()
                return
            self._all.discard(worker)
            self._condition.notify()
        if keep or not healthy:
            worker.process.kill()
        worker.stop(grace_s=1.0)

    def verify(
        self,
        prediction: str,
        gold: str,
        *,
        timeout_s: float,
        soft_timeout_s: float | None = None,
    ) -> WorkerReply:
        """Runs math-verify on one normalised pair in a worker, within ``timeout_s`` seconds.

        ``soft_timeout_s`` (default ``0.8 * timeout_s``) is when the worker interrupts itself;
        setting it at or above ``timeout_s`` leaves termination to the hard kill alone.
        """
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if soft_timeout_s is None:
            soft_timeout_s = _SOFT_TIMEOUT_FRACTION * timeout_s
        worker = self._acquire()
        healthy = False
        try:
            reply = worker.request(prediction, gold, timeout_s, soft_timeout_s)
            if reply is None:
                return WorkerReply("timeout", detail=f"worker killed after {timeout_s:g} s")
            status = reply.get("status")
            if status == "ok":
                healthy = True
                return WorkerReply("ok", bool(reply.get("equivalent")))
            if status == "timeout":
                healthy = True
                return WorkerReply("timeout", detail=f"interrupted after {soft_timeout_s:g} s")
            return WorkerReply("error", detail=str(reply.get("detail", "unknown worker error")))
        except _WorkerDied as error:
            return WorkerReply("error", detail=str(error))
        finally:
            self._release(worker, healthy=healthy)

    def verify_many(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        timeout_s: float,
        num_threads: int | None = None,
    ) -> list[WorkerReply]:
        """Verifies many pairs concurrently (one caller thread per busy worker), in order."""
        if not pairs:
            return []
        num_threads = max(1, min(num_threads or self._max_workers, len(pairs)))
        self.ensure_capacity(num_threads)
        if num_threads == 1:
            return [self.verify(p, g, timeout_s=timeout_s) for p, g in pairs]
        with ThreadPoolExecutor(num_threads, thread_name_prefix="reasonrl-grader") as executor:
            return list(executor.map(lambda pair: self.verify(*pair, timeout_s=timeout_s), pairs))

    def close(self) -> None:
        """Stops all workers; idle ones exit cleanly, busy ones are killed."""
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = self._all.difference(idle)
            self._all.clear()
            self._condition.notify_all()
        for worker in busy:
            worker.process.kill()
        for worker in idle:
            worker.stop(grace_s=2.0)

    def __enter__(self) -> GradingPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


_default_pool: GradingPool | None = None
_default_pool_pid: int | None = None
_default_pool_lock = threading.Lock()


def get_default_pool(min_workers: int | None = None) -> GradingPool:
    """The process-wide pool used by the grading functions, created on first use.

    ``min_workers`` raises its capacity if needed. A forked child gets a fresh pool.
    """
    global _default_pool, _default_pool_pid
    with _default_pool_lock:
        if _default_pool is None or _default_pool_pid != os.getpid():
            _default_pool = GradingPool()
            _default_pool_pid = os.getpid()
        pool = _default_pool
    if min_workers:
        pool.ensure_capacity(min_workers)
    return pool


def shutdown_default_pool() -> None:
    """Closes the default pool (registered with atexit; the next use starts a new one)."""
    global _default_pool, _default_pool_pid
    with _default_pool_lock:
        pool, owner = _default_pool, _default_pool_pid
        _default_pool = _default_pool_pid = None
    if pool is not None and owner == os.getpid():
        pool.close()


def _forget_pool_after_fork() -> None:
    """In a forked child: the parent's pool (and a lock another thread may hold) is not ours."""
    global _default_pool, _default_pool_pid, _default_pool_lock
    _default_pool = _default_pool_pid = None
    _default_pool_lock = threading.Lock()


atexit.register(shutdown_default_pool)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)
