"""A disk that fills up while one file is written atomically (``reasonrl.workdir.files``).

    python -m tests.sampling.full_disk summary.json evals.math500 --checkpoint=... ...

runs the binary (the module after the file name, with the flags after it) as ``__main__`` while
every atomic write of a file with that name writes half its text and then fails with ENOSPC, as
a full disk does. In a test, :func:`fill_disk_for` does the same through ``monkeypatch``.
"""

import errno
import os
import runpy
import sys

from reasonrl.workdir import files


class FullDiskOs:
    """The ``os`` module, but files opened through ``fdopen`` whose temporary name (``.<name>.``
    prefix, as ``atomic_write_text`` makes them) is for ``name`` fail halfway through a write."""

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, attribute):
        return getattr(os, attribute)

    def fdopen(self, fd, *args, **kwargs):
        path = os.readlink(f"/proc/self/fd/{fd}")
        handle = os.fdopen(fd, *args, **kwargs)
        if os.path.basename(path).startswith(f".{self.name}."):
            write = handle.write

            def write_half_then_fail(text):
                write(text[: len(text) // 2])
                handle.flush()
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            handle.write = write_half_then_fail
        return handle


def fill_disk_for(monkeypatch, name: str) -> None:
    """Makes atomic writes of files called ``name`` fail with ENOSPC for the rest of the test."""
    monkeypatch.setattr(files, "os", FullDiskOs(name))


if __name__ == "__main__":
    name, module, *flags = sys.argv[1:]
    files.os = FullDiskOs(name)
    sys.argv = [module, *flags]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
