r"""The grading worker: a separate process that runs math-verify on one answer pair at a time.

:mod:`reasonrl.rewards.pool` starts this file as a script (``python worker.py MEMORY_LIMIT_MB``),
so the worker imports nothing from ``reasonrl`` (nor the caller's ``__main__``) and starts in
about a second. Protocol, one JSON object per line (no pickle):

* worker -> parent at start-up: ``{"ready": true, "pid": ...}`` (after imports and a warm-up);
* parent -> worker: ``{"id": int, "prediction": str, "gold": str, "soft_timeout_s": float}``;
* worker -> parent: ``{"id": int, "status": "ok", "equivalent": bool}``, or status
  ``"timeout"`` (the soft deadline fired) or ``"error"`` (with ``"detail"``).

Two corrections to math-verify's parse, applied in :func:`verify_pair`: a free symbol ``i`` is
the imaginary unit (``i(2-i)`` equals ``1+2i``, ``(1+i)^2`` equals ``2i``; latex2sympy leaves it
a plain symbol), and the prediction's symbols take the gold's assumptions (math-verify makes the
symbols of an answer that looks complex non-real, so ``x`` could differ from ``x``).

Safety inside the worker:

* math-verify's own ``signal.alarm`` timeouts are switched off (``parsing_timeout=None``,
  ``timeout_seconds=None``); instead an ``ITIMER_REAL`` timer raises :class:`SoftDeadline`, a
  ``BaseException`` that math-verify's and sympy's ``except Exception`` blocks do not swallow,
  so a slow pure-Python computation is interrupted and the worker survives. Work stuck inside a
  single C call cannot be interrupted this way: the parent then kills the process.
* ``RLIMIT_AS`` caps the address space (a huge integer raises ``MemoryError`` instead of
  exhausting the machine), SIGINT is ignored (Ctrl-C is the parent's business), and the worker
  exits when its stdin closes or its parent process disappears.
* Code execution: math-verify parses LaTeX with an ANTLR grammar into sympy objects (no
  ``eval``); its only ``eval`` path is ``sympy.parse_expr`` on plain expressions that its regex
  restricts to digits, ``.``, whitespace and ``+-*/^()×÷``, so no name, attribute or call can be
  formed. The worker additionally wraps every ``parse_expr`` math-verify and latex2sympy hold
  (:func:`guard_parse_expr`) so that only plain arithmetic text can ever reach ``eval``. The
  parent never sends anything but two short strings and never unpickles anything it receives.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # Run as a script, Python put this file's directory first on sys.path; drop it so that no
    # module of this package can shadow a library module inside the worker.
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import functools  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402

__all__ = ["SoftDeadline", "guard_parse_expr", "main", "verify_pair"]

_PARENT_POLL_S = 1.0


class SoftDeadline(BaseException):
    """Raised by the worker's interval timer when a request runs past its soft deadline."""


def _is_sympy(value) -> bool:
    import sympy

    return isinstance(value, (sympy.Basic, sympy.MatrixBase))


def _replace_symbols(value, replacements: dict):
    """``value`` with its symbols replaced all at once (one traversal).

    Sympy can refuse (``I > 0`` raises) or decide a relation on the way (``Eq(z, 3 + 4*I)`` with
    a real ``z`` becomes ``False``); the original is kept in both cases.
    """
    from sympy.logic.boolalg import BooleanAtom

    if not replacements:
        return value
    try:
        replaced = value.xreplace(replacements)
    except Exception:  # noqa: BLE001 - a refused replacement leaves the answer as parsed
        return value
    return value if isinstance(replaced, BooleanAtom) else replaced


def _read_i_as_imaginary_unit(value):
    """Substitutes sympy's ``I`` for a free symbol named ``i`` (latex2sympy never does).

    latex2sympy parses ``i`` as a plain symbol, so ``i(2-i)`` would not equal ``1+2i``. The
    answer is then complex, so its other symbols become non-real, as math-verify makes them in
    an answer it recognises as complex (``z = 3+4i`` must not turn into ``False``). A bound ``i``
    (a summation index) is not free and is left alone.
    """
    import sympy

    if not _is_sympy(value):
        return value
    imaginary = [symbol for symbol in value.free_symbols if symbol.name == "i"]
    if not imaginary:
        return value
    # One simultaneous replacement: renaming first would already decide `Eq(z, 3 + 4*i)`.
    replacements = {symbol: sympy.I for symbol in imaginary}
    replacements.update(
        (symbol, sympy.Symbol(symbol.name, real=False))
        for symbol in value.free_symbols
        if symbol.name != "i" and symbol.is_real is not False
    )
    return _replace_symbols(value, replacements)


def _with_assumptions_of(value, reference: tuple):
    """Gives ``value``'s symbols the assumptions of the same-named symbols in ``reference``.

    math-verify parses an answer that looks complex with non-real symbols and any other with
    real ones, so the ``x`` of ``x + i`` and the ``x`` of ``2i + x`` would differ.
    """
    if not _is_sympy(value):
        return value
    by_name = {
        symbol.name: symbol for item in reference if _is_sympy(item) for symbol in item.free_symbols
    }
    renames = {
        symbol: by_name[symbol.name]
        for symbol in value.free_symbols
        if symbol.name in by_name and by_name[symbol.name] != symbol
    }
    return _replace_symbols(value, renames)


@functools.lru_cache(maxsize=1024)
def _parse_answer(answer: str) -> tuple:
    """math-verify parse of one answer, cached (a gold answer is checked against many samples).

    ``i`` is read as the imaginary unit. An interrupted parse raises and is not cached. The
    result is a tuple of immutable sympy objects and strings, safe to share between calls.
    """
    from math_verify import parse

    parsed = parse("\\boxed{" + answer + "}", parsing_timeout=None)
    return tuple(_read_i_as_imaginary_unit(value) for value in parsed)


def verify_pair(prediction: str, gold: str) -> bool:
    r"""Runs math-verify's parse + verify on two normalised answer strings.

    Both are wrapped as ``\boxed{...}`` so they go through math-verify's LaTeX extraction and
    normalisation the same way; the gold is passed as gold (``verify`` is not symmetric). The
    prediction's symbols take the gold's assumptions (real or not), so that the same letter is
    the same symbol on both sides. Must run on the main thread of a process that can afford to
    be killed.
    """
    from math_verify import verify

    gold_parsed = _parse_answer(gold)
    pred_parsed = [_with_assumptions_of(value, gold_parsed) for value in _parse_answer(prediction)]
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(list(gold_parsed), pred_parsed, timeout_seconds=None))


def _on_alarm(signum, frame):
    raise SoftDeadline()


def _handle(request: dict) -> dict:
    reply = {"id": request.get("id")}
    try:
        soft_timeout_s = float(request["soft_timeout_s"])
        signal.setitimer(signal.ITIMER_REAL, max(soft_timeout_s, 0.001))
        try:
            equivalent = verify_pair(str(request["prediction"]), str(request["gold"]))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        reply.update(status="ok", equivalent=equivalent)
    except SoftDeadline:
        reply.update(status="timeout")
    except BaseException as error:  # noqa: BLE001 - report anything, keep serving
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        reply.update(status="error", detail=f"{type(error).__name__}: {error}"[:300])
    return reply


def _read_line(fd: int, buffer: bytearray, parent_pid: int) -> bytes | None:
    """Next request line from stdin; ``None`` at EOF or when the parent process is gone."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    while True:
        newline = buffer.find(b"\n")
        if newline >= 0:
            line = bytes(buffer[:newline])
            del buffer[: newline + 1]
            return line
        if not poller.poll(int(_PARENT_POLL_S * 1000)):
            if os.getppid() != parent_pid:
                return None
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return None
        buffer.extend(chunk)


_protocol_out = None  # the original stdout, kept for protocol messages only


def _write(message: dict) -> None:
    _protocol_out.write(json.dumps(message) + "\n")
    _protocol_out.flush()


def _reserve_stdout_for_protocol() -> None:
    """Keeps fd 1 for replies; anything else printing to stdout (Python or C) goes to stderr."""
    global _protocol_out
    _protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="ascii")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


_ARITHMETIC_ONLY = re.compile(r"[0-9.\s+\-*/()]*")


def guard_parse_expr(parse_expr):
    """Wraps sympy's ``parse_expr`` (which ``eval``s) to accept plain arithmetic text only.

    math-verify only hands it digits and ``+-*/^()`` already; this guard keeps it that way even
    if a future version widens that regex. Anything else raises ``ValueError``, which
    math-verify treats as a failed parse.
    """

    @functools.wraps(parse_expr)
    def guarded(expression, *args, **kwargs):
        if not isinstance(expression, str) or not _ARITHMETIC_ONLY.fullmatch(expression):
            raise ValueError("refusing to evaluate anything but plain arithmetic")
        return parse_expr(expression, *args, **kwargs)

    return guarded


def _install_eval_guards() -> None:
    import latex2sympy2_extended.latex2sympy2 as latex2sympy_module
    import math_verify.parser as parser_module

    for module in (parser_module, latex2sympy_module):
        if hasattr(module, "parse_expr"):
            module.parse_expr = guard_parse_expr(module.parse_expr)


def main(argv: list[str]) -> int:
    memory_limit_mb = int(argv[1]) if len(argv) > 1 else 0
    parent_pid = os.getppid()
    _reserve_stdout_for_protocol()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, _on_alarm)

    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)  # math-verify warns on each disabled timeout / failed parse
    _install_eval_guards()
    verify_pair("\\frac{1}{2}", "0.5")  # warm-up: imports, regex compilation, ANTLR start-up

    if memory_limit_mb > 0:
        import resource

        limit = memory_limit_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))

    _write({"ready": True, "pid": os.getpid()})
    stdin_fd = sys.stdin.fileno()
    buffer = bytearray()
    while True:
        line = _read_line(stdin_fd, buffer, parent_pid)
        if line is None:
            return 0
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            _write({"id": None, "status": "error", "detail": "malformed request"})
            continue
        _write(_handle(request))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
