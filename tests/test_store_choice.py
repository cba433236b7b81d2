"""Choosing the store and the engine: database URLs, ``frontdesk db info``/``db migrate``, and
the names a runtime refuses before it creates anything."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from agents import Agent
from agents.testing import ScriptedModel, assistant_message

from frontdesk import AgentRuntime
from frontdesk.errors import InvalidDatabaseURL, InvalidInput
from frontdesk.store import SCHEMA_VERSION, open_store, redact_url, store_path
from frontdesk.store.sqlite import _schema

from conftest import PYTHON, child_env


def echo() -> Agent[None]:
    return Agent(name="echo", model=ScriptedModel([[assistant_message("hello")]]))


# -- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "frontdesk.db",
        "/var/lib/frontdesk.db",
        "sqlite://",
        "sqlite:///",
        "sqlite://somehost/x.db",
        "sqlite:///x.db?mode=ro",
        "postgresql://",
        "postgresql://user:pw@db.example:notaport/frontdesk",
        "postgresql://db.example/frontdesk\n",
    ],
)
def test_a_malformed_database_url_is_refused_and_nothing_is_created(
    tmp_path: Path, url: str
) -> None:
    home = tmp_path / "new-home"
    with pytest.raises(InvalidDatabaseURL, match="nothing was created"):
        AgentRuntime(home, database_url=url)
    assert not home.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url", ["mysql://user:pw@db.example/frontdesk", "redis://localhost", "file:///tmp/x.db"]
)
def test_an_unknown_scheme_is_refused_and_its_password_never_shown(
    tmp_path: Path, url: str
) -> None:
    home = tmp_path / "new-home"
    with pytest.raises(InvalidDatabaseURL, match="unknown database URL scheme") as info:
        AgentRuntime(home, database_url=url)
    assert "pw" not in str(info.value)
    assert isinstance(info.value, ValueError)
    assert not home.exists()


def test_the_environment_names_the_database(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", "oracle://scott:tiger@db/orcl")
    with pytest.raises(InvalidDatabaseURL, match="'oracle'"):
        AgentRuntime(home)
    elsewhere = tmp_path / "elsewhere" / "runs.db"
    elsewhere.parent.mkdir()
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", f"sqlite://{elsewhere}")
    with AgentRuntime(home, recover=False) as runtime:
        assert runtime.run(echo(), "hi").output == "hello"
        assert runtime.store.url == f"sqlite://{elsewhere}"
    assert elsewhere.exists() and not store_path(home).exists()
    conn = sqlite3.connect(elsewhere)
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    conn.close()


def test_a_sqlite_url_naming_a_directory_uses_its_frontdesk_db(home: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    with AgentRuntime(home, database_url=f"sqlite:///{shared}", recover=False) as runtime:
        runtime.run(echo(), "hi")
    assert store_path(shared).exists() and not store_path(home).exists()


NO_PSYCOPG = """
import sys
sys.modules["psycopg"] = None  # as if the postgres extra were not installed
from frontdesk import AgentRuntime
from frontdesk.errors import StoreUnavailable
try:
    AgentRuntime(sys.argv[1], database_url="postgresql://app:s3cret@db.example:5432/frontdesk")
except StoreUnavailable as exc:
    print(exc)
else:
    print("opened")
"""


def test_a_postgres_url_without_the_extra_names_it_and_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "new-home"
    proc = subprocess.run(
        [PYTHON, "-c", NO_PSYCOPG, str(home)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    message = proc.stdout.strip()
    assert "pip install 'frontdesk[postgres]'" in message
    assert "nothing was created" in message
    assert "s3cret" not in message and "app:***@db.example:5432" in message
    assert not home.exists()


HIDE_PSYCOPG = """
import importlib.abc
import sys


class HidePsycopg(importlib.abc.MetaPathFinder):
    \"\"\"Finds psycopg, psycopg_pool and psycopg's binary only to say they are not there.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("psycopg", "psycopg_pool", "psycopg_binary", "psycopg_c"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, HidePsycopg())
"""


@pytest.fixture
def without_postgres_extra(tmp_path: Path) -> dict[str, str]:
    """The environment of a child for which the ``postgres`` extra is not installed: a
    ``sitecustomize`` puts a finder first on ``sys.meta_path`` that hides psycopg."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_PSYCOPG)
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    return env


@pytest.mark.parametrize(
    "command", [["runs", "list"], ["db", "info"], ["db", "migrate"], ["worker", "--poll", "1"]]
)
def test_the_cli_without_the_postgres_extra_says_so_and_creates_nothing(
    tmp_path: Path, without_postgres_extra: dict[str, str], command: list[str]
) -> None:
    home = tmp_path / "new-home"
    env = {
        **without_postgres_extra,
        "FRONTDESK_HOME": str(home),
        "FRONTDESK_DATABASE_URL": "postgresql://app:s3cret@db.example:5432/frontdesk",
    }
    hidden = subprocess.run(
        [PYTHON, "-c", "import psycopg"], env=env, capture_output=True, text=True, timeout=120
    )
    assert hidden.returncode == 1 and "No module named 'psycopg'" in hidden.stderr
    proc = subprocess.run(
        [PYTHON, "-m", "frontdesk", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "pip install 'frontdesk[postgres]'" in proc.stderr, proc.stderr
    assert "s3cret" not in proc.stdout + proc.stderr
    assert not home.exists()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql://user:s3cret@db.example:notaport/frontdesk", "nothing was created"),
        ("mysql://user:s3cret@db.example/frontdesk", "unknown database URL scheme 'mysql'"),
    ],
)
def test_the_cli_refuses_a_bad_database_url_from_the_environment(
    tmp_path: Path, url: str, why: str
) -> None:
    home = tmp_path / "new-home"
    env = {**child_env(), "FRONTDESK_HOME": str(home), "FRONTDESK_DATABASE_URL": url}
    for command in (["runs", "list"], ["worker", "--poll", "1"]):
        proc = subprocess.run(
            [PYTHON, "-m", "frontdesk", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode != 0, proc.stdout
        assert "Traceback" not in proc.stderr, proc.stderr
        assert why in proc.stderr and "s3cret" not in proc.stdout + proc.stderr, proc.stderr
        assert not home.exists()


def test_passwords_are_hidden() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert redact_url("postgresql://db/x") == "postgresql://db/x"
    assert redact_url("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"


# -- engines ------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["temporal-ish", "", "LOCAL", 7])
def test_an_unknown_engine_is_refused_before_anything_starts(tmp_path: Path, engine: Any) -> None:
    home = tmp_path / "new-home"
    with pytest.raises(InvalidInput, match="unknown engine"):
        AgentRuntime(home, engine=engine)
    assert not home.exists()


# -- frontdesk db -------------------------------------------------------------------------------


def frontdesk(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), *args],
        cwd=home.parent,
        env=child_env(COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_db_info_and_migrate_on_a_new_home(home: Path) -> None:
    shown = frontdesk(home, "db", "info", "--json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info == {
        "backend": "sqlite",
        "url": f"sqlite://{store_path(home)}",
        "schema_version": 0,
        "code_version": SCHEMA_VERSION,
        "needs_migration": True,
    }
    assert not store_path(home).exists()  # looking changes nothing
    migrated = frontdesk(home, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert f"from version 0 to {SCHEMA_VERSION}" in migrated.stdout
    again = frontdesk(home, "db", "migrate")
    assert f"schema version {SCHEMA_VERSION}: already up to date" in again.stdout
    plain = frontdesk(home, "db", "info")
    assert "backend:        sqlite" in plain.stdout
    assert f"schema version: {SCHEMA_VERSION}" in plain.stdout
    assert "up to date" in plain.stdout


def test_db_migrate_upgrades_an_older_store_that_info_leaves_alone(home: Path) -> None:
    conn = sqlite3.connect(store_path(home), isolation_level=None)
    for statement in _schema._statements(_schema.MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    info = json.loads(frontdesk(home, "db", "info", "--json").stdout)
    assert (info["schema_version"], info["needs_migration"]) == (1, True)
    store = open_store(home=home, migrate=False)
    try:
        assert store.info().schema_version == 1
    finally:
        store.close()
    migrated = frontdesk(home, "db", "migrate")
    assert f"from version 1 to {SCHEMA_VERSION}" in migrated.stdout, migrated.stderr
    conn = sqlite3.connect(store_path(home))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_db_info_refuses_a_bad_url_and_a_newer_schema(home: Path) -> None:
    bad = frontdesk(home, "db", "info", "--database-url", "mongodb://db/x")
    assert bad.returncode == 2 and "unknown database URL scheme 'mongodb'" in bad.stderr
    conn = sqlite3.connect(store_path(home), isolation_level=None)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    newer = frontdesk(home, "db", "info")
    assert newer.returncode == 0, newer.stderr
    assert "written by a newer frontdesk" in newer.stdout
    refused = frontdesk(home, "db", "migrate")
    assert refused.returncode == 1 and "upgrade frontdesk" in refused.stderr
