"""A throw-away or development PostgreSQL server from the machine's PostgreSQL binaries.

:class:`LocalPostgres` runs ``initdb`` once into a data directory, then starts and stops the
server with ``pg_ctl``. It backs ``frontdesk postgres dev`` (data under the home) and the test
suite's clusters (data under a temporary directory). PostgreSQL refuses to run as root, so
under root the binaries run as the ``postgres`` system user through ``runuser``.

The server listens on loopback TCP and on a Unix socket in a private directory, with
password authentication for TCP: the generated password is kept in the data directory's
parent with mode 0600, and :attr:`LocalPostgres.url` carries it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import FrontdeskError

BIN_ENV = "FRONTDESK_PG_BIN"
"""Environment variable naming the directory of ``initdb``, ``pg_ctl`` and ``postgres``."""
DEBIAN_ROOT = Path("/usr/lib/postgresql")
"""Where Debian's ``postgresql`` package installs each major version's binaries."""
SYSTEM_USER = "postgres"
"""The system user the server runs as when frontdesk runs as root."""
DATABASE = "frontdesk"
"""The database created in a new cluster."""
START_TIMEOUT = 60
"""Seconds ``pg_ctl`` waits for the server to accept connections."""


class PostgresUnavailable(FrontdeskError):
    """The PostgreSQL binaries are missing, or the server would not start or stop."""


def find_binaries() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    ``$FRONTDESK_PG_BIN`` if set; else the newest ``/usr/lib/postgresql/N/bin``; else the
    directory of ``pg_ctl`` on the ``PATH``.
    """
    explicit = os.environ.get(BIN_ENV)
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    else:
        if DEBIAN_ROOT.is_dir():
            versions = [p for p in DEBIAN_ROOT.iterdir() if re.fullmatch(r"\d+", p.name)]
            for version in sorted(versions, key=lambda p: int(p.name), reverse=True):
                candidates.append(version / "bin")
        on_path = shutil.which("pg_ctl")
        if on_path:
            candidates.append(Path(on_path).parent)
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    where = f"${BIN_ENV} ({explicit})" if explicit else f"{DEBIAN_ROOT}/*/bin or the PATH"
    raise PostgresUnavailable(
        f"PostgreSQL's server binaries (initdb, pg_ctl) were not found in {where}; "
        "install them (Debian: apt-get install postgresql) or set "
        f"{BIN_ENV} to their directory"
    )


@dataclass
class LocalPostgres:
    """One PostgreSQL cluster in ``root`` (data in ``root/data``), served on ``port``."""

    root: Path
    """Directory holding the cluster: ``data/``, ``socket/``, ``password`` and ``server.log``."""
    port: int = 5433
    """The loopback TCP port the server listens on."""
    host: str = "127.0.0.1"
    """The address the server listens on."""
    user: str = "frontdesk"
    """The database superuser created with the cluster."""
    binaries: Path = field(default_factory=find_binaries)
    """Where ``initdb`` and ``pg_ctl`` are."""

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        """The private directory of the server's Unix socket."""
        return self.root / "socket"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.root / "server.log"

    @property
    def password(self) -> str:
        """The superuser's password (generated with the cluster)."""
        return (self.root / "password").read_text().strip()

    @property
    def url(self) -> str:
        """The ``postgresql://`` URL of the cluster's database, with its password."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{DATABASE}"

    @property
    def initialized(self) -> bool:
        """Whether ``initdb`` has run here."""
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self) -> None:
        """Create the cluster (once) and its ``frontdesk`` database."""
        if self.initialized:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        password_file = self.root / "password"
        if not password_file.exists():
            tmp = self.root / "password.tmp"
            tmp.write_text(secrets.token_urlsafe(18) + "\n")
            tmp.chmod(0o600)
            tmp.rename(password_file)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        try:
            self._own(pwfile)
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--pwfile",
                str(pwfile),
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--encoding=UTF8",
                "--no-instructions",
                prepare=[self.data_dir],
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self.start()
        try:
            self._run(
                "createdb",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                self.user,
                DATABASE,
            )
        finally:
            self.stop()

    def start(self) -> str:
        """Start the server (initialising the cluster first if needed); returns the URL."""
        if not self.initialized:
            self.init()
            if self.running:
                return self.url
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses={self.host} "
            "-c fsync=on -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(START_TIMEOUT),
            "-o",
            options,
            prepare=[self.socket_dir, self.log_file],
        )
        return self.url

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` disconnects clients; ``immediate`` is a crash)."""
        if not self.running:
            return
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w")

    def restart(self) -> None:
        """Stop and start again on the same port: every client connection is cut."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        """Whether a server runs on this data directory."""
        if not self.initialized:
            return False
        result = subprocess.run(
            [*self._prefix(), str(self.binaries / "pg_ctl"), "status", "-D", str(self.data_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.returncode == 0

    # -- running the binaries ------------------------------------------------------------

    def _prefix(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PostgresUnavailable(
                "PostgreSQL refuses to run as root and runuser is missing to switch to the "
                f"{SYSTEM_USER} user; run frontdesk as another user"
            )
        return [runuser, "-u", SYSTEM_USER, "--"]

    def _own(self, *paths: Path) -> None:
        """Under root, hand ``paths`` (and the cluster root) to the ``postgres`` user."""
        if os.geteuid() != 0:
            return
        for path in (self.root, *paths):
            shutil.chown(path, SYSTEM_USER, SYSTEM_USER)
        reach = subprocess.run(
            [*self._prefix(), "test", "-x", str(self.root)], capture_output=True, check=False
        )
        if reach.returncode != 0:
            raise PostgresUnavailable(
                f"the {SYSTEM_USER} user, which runs the server, cannot reach {self.root}: a "
                "directory above it is private to root; put the cluster where it can (for "
                "example under /var/tmp)"
            )

    def _run(self, binary: str, *args: str, prepare: list[Path] | None = None) -> None:
        for path in prepare or []:
            if path.suffix == ".log":
                path.touch(exist_ok=True)
            else:
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._own(*(prepare or []))
        program = self.binaries / binary
        if not program.is_file():
            program = Path(shutil.which(binary) or program)
        result = subprocess.run(
            [*self._prefix(), str(program), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.root,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            tail = self._log_tail()
            raise PostgresUnavailable(
                f"{binary} {args[0] if args else ''} failed for the cluster in {self.root}: "
                + (detail[-1] if detail else f"exit code {result.returncode}")
                + (f"\nserver log:\n{tail}" if tail else "")
            )

    def _log_tail(self, lines: int = 8) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
