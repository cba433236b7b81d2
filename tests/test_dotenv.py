"""``.env`` files: the runtime and the command line read ``./.env`` and the home's ``.env``, as
the tutorials' ``load_dotenv()`` does, and never override what the environment already has."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from frontdesk import AgentRuntime
from frontdesk._dotenv import EnvFileError, load_env_files

from conftest import PYTHON, child_env

NAMES = ("FD_TEST_FROM_CWD", "FD_TEST_FROM_HOME", "FD_TEST_BOTH", "FD_TEST_ALREADY_SET")


@pytest.fixture(autouse=True)
def restored_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the loader sets is undone after the test: each name is registered with
    monkeypatch (set, then removed) so teardown restores it to absent."""
    for name in (*NAMES, "FRONTDESK_HOME"):
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_runtime_reads_dotenv_in_the_working_directory_without_overriding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    write(
        project / ".env",
        "# the tutorial's file\nFD_TEST_FROM_CWD=from-cwd\nexport FD_TEST_ALREADY_SET='from file'\n",
    )
    monkeypatch.chdir(project)
    monkeypatch.setenv("FD_TEST_ALREADY_SET", "from the environment")
    with AgentRuntime(tmp_path / "home", recover=False):
        pass

    assert os.environ["FD_TEST_FROM_CWD"] == "from-cwd"
    assert os.environ["FD_TEST_ALREADY_SET"] == "from the environment"


def test_the_homes_dotenv_is_read_after_the_working_directorys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    write(tmp_path / "project" / ".env", f"FRONTDESK_HOME={home}\nFD_TEST_BOTH=project\n")
    write(home / ".env", "FD_TEST_FROM_HOME=home\nFD_TEST_BOTH=home\n")
    monkeypatch.chdir(tmp_path / "project")

    with AgentRuntime(recover=False) as runtime:
        pass

    # ./.env chose the home; the home's file added its own names; the first file won.
    assert runtime.home == home.resolve()
    assert (os.environ["FD_TEST_FROM_HOME"], os.environ["FD_TEST_BOTH"]) == ("home", "project")


def test_a_runtime_reads_its_own_homes_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "elsewhere" / ".env", "FD_TEST_FROM_HOME=given home\n")

    with AgentRuntime(tmp_path / "elsewhere", recover=False):
        pass

    assert os.environ["FD_TEST_FROM_HOME"] == "given home"


def test_no_dotenv_files_is_fine_and_each_file_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_env_files() == []

    dotenv = write(tmp_path / ".env", "FD_TEST_FROM_CWD=x\n")
    monkeypatch.setenv("FRONTDESK_HOME", str(tmp_path))
    assert load_env_files() == [dotenv.resolve()]


def test_an_unreadable_dotenv_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(b"FD_TEST_FROM_CWD=\xff\xfe\n")

    with pytest.raises(EnvFileError, match=r"cannot read .*\.env"):
        AgentRuntime(tmp_path / "home", recover=False)
    assert not (tmp_path / "home").exists()


def test_the_command_line_reads_dotenv(tmp_path: Path) -> None:
    # The home comes from ./.env; the environment's own value of a name wins over the file.
    project, home = tmp_path / "project", tmp_path / "from-dotenv"
    write(project / ".env", f"FRONTDESK_HOME={home}\nFRONTDESK_MODEL=not-a-model\n")
    env = child_env(FRONTDESK_MODEL="rules")
    env.pop("FRONTDESK_HOME", None)

    proc = subprocess.run(
        [PYTHON, "-m", "frontdesk", "support", "ask", "What are your opening hours?"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert (home / "frontdesk.db").is_file()
    assert not (project / ".frontdesk").exists()
    assert "rules baseline" in proc.stdout
