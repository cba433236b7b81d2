"""What CI runs is what the README says it runs, and the package ships its type hints."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

from conftest import WAIT_SECONDS

ROOT = Path(__file__).parent.parent
CI = ROOT / ".ci" / "run"
CHECKS = [
    ".venv/bin/python -m ruff check src tests bench",
    ".venv/bin/python -m ruff format --check src tests bench",
    ".venv/bin/python -m mypy",
]

# Stands in for python3, and for the venv's pip and python it creates: logs each call and
# fails the calls that mention $CI_FAIL with $CI_FAIL_STATUS.
STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "$CI_LOG"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    mkdir -p "$3/bin" && cp "$0" "$3/bin/pip" && cp "$0" "$3/bin/python"
fi
if [ -n "${CI_FAIL:-}" ]; then
    case "$*" in *"$CI_FAIL"*) exit "$CI_FAIL_STATUS" ;; esac
fi
exit 0
"""


def readme_test_command() -> str:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return blocks[1].strip()


def run_ci(tmp_path: Path, fail: str | None = None, status: int = 1) -> tuple[int, list[str]]:
    """``.ci/run`` in a copy of the checkout whose python3 is :data:`STUB`."""
    (tmp_path / ".ci").mkdir()
    shutil.copy2(CI, tmp_path / ".ci" / "run")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(STUB)
    (bin_dir / "python3").chmod(0o755)
    log = tmp_path / "calls.log"
    env = {
        "PATH": os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"]),
        "CI_LOG": str(log),
        "CI_FAIL": fail or "",
        "CI_FAIL_STATUS": str(status),
    }
    done = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")], env=env, capture_output=True, timeout=WAIT_SECONDS
    )
    return done.returncode, log.read_text().splitlines()


def test_ci_runs_the_readme_test_command_verbatim_then_the_checks() -> None:
    command = readme_test_command()
    assert command.endswith(".venv/bin/python -m pytest -n 2 -q")
    lines = [line for line in CI.read_text().splitlines() if line and not line.startswith("#")]
    assert lines[lines.index(command) + 1 :] == CHECKS
    assert CI.stat().st_mode & stat.S_IXUSR


def test_ci_runs_every_step_in_order(tmp_path: Path) -> None:
    status, calls = run_ci(tmp_path)
    assert status == 0
    assert calls == [
        "python3 -m venv .venv",
        "pip install -q -e .[dev]",
        "python -m pytest -n 2 -q",
        "python -m ruff check src tests bench",
        "python -m ruff format --check src tests bench",
        "python -m mypy",
    ]


@pytest.mark.parametrize(
    ("fail", "status", "last"),
    [
        ("pytest", 5, "python -m pytest -n 2 -q"),  # no tests collected
        ("pytest", 1, "python -m pytest -n 2 -q"),
        ("format", 1, "python -m ruff format --check src tests bench"),
        ("mypy", 1, "python -m mypy"),
    ],
)
def test_a_failing_step_fails_ci_with_its_status(
    tmp_path: Path, fail: str, status: int, last: str
) -> None:
    code, calls = run_ci(tmp_path, fail, status)
    assert code == status
    assert calls[-1] == last


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_check_runs_what_ci_runs() -> None:
    planned = subprocess.run(
        ["make", "-n", "check", "PY=.venv/bin/python"],
        cwd=ROOT, capture_output=True, text=True, timeout=WAIT_SECONDS, check=True,
    ).stdout.splitlines()  # fmt: skip
    pytest_command = readme_test_command().split(" && ")[-1]
    assert sorted(planned) == sorted([*CHECKS, pytest_command])


def test_the_package_ships_py_typed(tmp_path: Path) -> None:
    """The PEP 561 marker is in the package and in what setuptools builds into a wheel."""
    assert files("frontdesk").joinpath("py.typed").is_file()
    build = (
        "import sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from setuptools.config.pyprojecttoml import apply_configuration\n"
        "from setuptools.dist import Distribution\n"
        "dist = Distribution({'script_name': 'setup.py'})\n"
        "apply_configuration(dist, 'pyproject.toml')\n"
        "command = dist.get_command_obj('build_py')\n"
        "command.build_lib, command.compile = sys.argv[1], 0\n"
        "command.ensure_finalized()\n"
        "command.run()\n"
    )
    subprocess.run(
        [sys.executable, "-c", build, str(tmp_path)],
        cwd=ROOT, capture_output=True, timeout=WAIT_SECONDS, check=True,
    )  # fmt: skip
    assert (tmp_path / "frontdesk" / "py.typed").is_file()
    assert (tmp_path / "frontdesk" / "runtime.py").is_file()
