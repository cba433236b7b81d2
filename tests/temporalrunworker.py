"""A process that serves Temporal runs and does nothing else, for crash tests.

``python -m temporalrunworker HOME``: opens a runtime on HOME (the engine and server come
from $FRONTDESK_ENGINE and $FRONTDESK_TEMPORAL_*), which runs a worker for the agents it can
import, writes ``$CRASHFLOW_DIR/worker-ready`` and stays until its test is gone or it is
killed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from frontdesk import AgentRuntime
from parking import park, write_marker


def main() -> None:
    """Serve until killed."""
    with AgentRuntime(sys.argv[1], recover=False):
        write_marker(Path(os.environ["CRASHFLOW_DIR"]) / "worker-ready", str(os.getpid()))
        park()


if __name__ == "__main__":
    main()
