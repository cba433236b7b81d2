"""Markers and parking for the flow scripts that tests run in child processes.

A flow writes a marker file to tell its test where it is (``write_marker``: a temporary file,
then a rename, so a reader sees nothing or the whole text) and may then ``park`` there until
the test SIGKILLs it. A parked process never outlives its test: it exits on its own once the
test process is gone (it is no longer the parent) or after ``$FLOW_PARK_SECONDS``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import NoReturn

PARENT_ENV = "FLOW_PARENT_PID"
"""Set by the tests in a child's environment: the pid of the test process that started it."""
PARK_SECONDS_ENV = "FLOW_PARK_SECONDS"
"""How long a parked process waits to be killed before it exits by itself."""
ABANDONED = 70
"""The exit status of a parked process that nobody killed."""

_PARENT = int(os.environ.get(PARENT_ENV) or os.getppid())


def write_marker(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    target = Path(path)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, target)


def park() -> NoReturn:
    """Wait to be killed; exit with :data:`ABANDONED` once the test is gone or time is up."""
    deadline = time.monotonic() + float(os.environ.get(PARK_SECONDS_ENV) or 300)
    while os.getppid() == _PARENT and time.monotonic() < deadline:
        time.sleep(0.1)
    os._exit(ABANDONED)
