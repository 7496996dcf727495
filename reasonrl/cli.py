"""How every binary starts and ends: flags parsed, the user's mistakes reported in one line.

    if __name__ == "__main__":
        cli.run(main)                    # instead of absl.app.run(main)

A `ReasonRLError` (every project error type), an `OSError` (a missing file, a read-only or full
disk: the message names the path) or a flag error (an unknown flag or config key, a config file
that is missing or does not parse) is printed to stderr as

    error: <what is wrong> (<file>:<line> or <field> or <flag>)

and the process exits with status 2. Anything else is a genuine bug and keeps its traceback.
`--verbosity=1` (absl's flag) or the environment variable REASONRL_TRACEBACK=1 shows the
traceback of a reported error too, for debugging.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

from absl import app, flags

from reasonrl.errors import ReasonRLError

EXIT_USER_ERROR = 2
TRACEBACK_ENV = "REASONRL_TRACEBACK"
USER_ERRORS = (ReasonRLError, OSError)


def format_error(error: BaseException) -> str:
    """`error: <message>` on one line (a multi-line message keeps its lines, indented)."""
    message = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename and str(error.filename) not in message:
        message = f"{message} ({error.filename})"
    lines = message.strip().splitlines()
    return "\n".join([f"error: {lines[0]}"] + [f"  {line.strip()}" for line in lines[1:]])


def _show_traceback() -> bool:
    if os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
        return True
    verbosity = flags.FLAGS["verbosity"] if "verbosity" in flags.FLAGS else None
    return bool(verbosity is not None and verbosity.present and verbosity.value >= 1)


def exit_with(error: BaseException) -> NoReturn:
    """Prints `error` as one clear line (plus its traceback in debug mode) and exits 2."""
    if _show_traceback():
        traceback.print_exception(error)
    sys.stderr.write(format_error(error) + "\n")
    sys.stderr.flush()
    sys.exit(EXIT_USER_ERROR)


def _flag_error(error: Exception) -> ReasonRLError:
    if isinstance(error, flags.Error):
        return ReasonRLError(f"flags: {error}")
    if isinstance(error, (AttributeError, KeyError)):  # an override of a key that does not exist
        detail = str(error.args[0] if error.args else error)
        detail = " ".join(detail.replace("\\n", " ").split()).strip("'\" ")
        return ReasonRLError(f"flags: unknown config key {detail}")
    return ReasonRLError(f"flags: {type(error).__name__}: {error}")  # a config file that fails


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a bad flag, config key or config file reported in one line."""
    try:
        return flags.FLAGS(argv)
    except Exception as error:  # noqa: BLE001 - everything here comes from the command line
        exit_with(_flag_error(error))


def define_config_file(name: str, default: str | None, help_string: str):
    """`config_flags.DEFINE_config_file` (lock_config=True); ml_collections reads the command
    line's `--<name>.<key>=` overrides as the flag is defined, so a bad one is reported here."""
    from ml_collections import config_flags

    try:
        return config_flags.DEFINE_config_file(name, default, help_string, lock_config=True)
    except Exception as error:  # noqa: BLE001 - a bad override or config file on the command line
        exit_with(_flag_error(error))


def guarded(main: Callable[[list[str]], int | None]) -> Callable[[list[str]], int | None]:
    """`main` with the user's errors reported in one line (exit status 2)."""

    def wrapped(argv: list[str]) -> int | None:
        try:
            return main(argv)
        except USER_ERRORS as error:
            exit_with(error)

    return wrapped


def run(main: Callable[[list[str]], int | None]) -> None:
    """absl.app.run(main) with one-line errors for bad flags and the user's mistakes."""
    app.run(guarded(main), flags_parser=parse_flags)
