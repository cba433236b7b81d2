"""``frontdesk postgres dev`` and the local clusters behind it, on the machine's binaries."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg
import pytest

from frontdesk.store.postgres._cluster import LocalPostgres
from pgcluster import free_port, new_root, require_binaries, throwaway_cluster

from conftest import PYTHON, Children, child_env, stop, wait_until

URL_LINE = re.compile(r"FRONTDESK_DATABASE_URL=(postgresql://\S+)")


def start_dev(children: Children, root: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    out = root / "dev.out"
    handle = out.open("w")
    proc = children.popen(
        [PYTHON, "-m", "frontdesk", "postgres", "dev", "--port", str(port),
         "--dir", str(root / "pg")],
        stdout=handle, stderr=subprocess.STDOUT, text=True, env=child_env(),
    )  # fmt: skip
    handle.close()

    def url() -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"postgres dev exited early:\n{out.read_text()}")
        found = URL_LINE.search(out.read_text())
        return found.group(1) if found else None

    return proc, wait_until(url, "postgres dev to print its URL")


def test_dev_serves_a_database_until_stopped_and_keeps_its_data(children: Children) -> None:
    require_binaries()
    root = new_root()
    cluster = LocalPostgres(root / "pg")
    try:
        port = free_port()
        proc, url = start_dev(children, root, port)
        assert f":{port}/" in url
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        proc.send_signal(signal.SIGINT)
        assert stop(proc) == 0
        assert not cluster.running
        assert "PostgreSQL stopped." in (root / "dev.out").read_text()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=5)
        # A second start finds the same cluster, password and data.
        proc, again = start_dev(children, root, port)
        assert again == url
        with psycopg.connect(again, connect_timeout=10) as conn:
            assert conn.execute("SELECT n FROM kept").fetchone() == (42,)
        proc.send_signal(signal.SIGTERM)
        assert stop(proc) == 0
        assert not cluster.running
    finally:
        cluster.stop(mode="immediate")
        shutil.rmtree(root, ignore_errors=True)


def test_the_password_is_required_and_kept_private() -> None:
    with throwaway_cluster() as cluster:
        password_file = cluster.root / "password"
        assert password_file.stat().st_mode & 0o077 == 0
        wrong = cluster.url.replace(cluster.password, "not-the-password")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(wrong, connect_timeout=10)
        with psycopg.connect(cluster.url, connect_timeout=10) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("frontdesk",)


def test_missing_binaries_are_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_PG_BIN", str(tmp_path / "nowhere"))
    result = subprocess.run(
        [PYTHON, "-m", "frontdesk", "postgres", "dev", "--dir", str(tmp_path / "pg")],
        capture_output=True, text=True, env=child_env(), timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "PostgreSQL's server binaries" in result.stderr
    assert "apt-get install postgresql" in result.stderr
    assert not (tmp_path / "pg").exists()


def test_a_port_out_of_range_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [PYTHON, "-m", "frontdesk", "postgres", "dev", "--port", "70000",
         "--dir", str(tmp_path / "pg")],
        capture_output=True, text=True, env=child_env(), timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert not (tmp_path / "pg").exists()
