"""Reading ``.env`` files, as the tutorials' ``load_dotenv()`` does.

The command line and every :class:`~frontdesk.AgentRuntime` read ``./.env`` (the directory the
process runs in) and then the home's ``.env`` (the runtime's ``home``, else
``$FRONTDESK_HOME``). A variable already in the environment is never overridden, and the first
file that sets a variable wins, so a project's ``.env`` can point ``FRONTDESK_HOME`` at the
home whose ``.env`` is read next.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv

from ._home import HOME_ENV
from .errors import FrontdeskError

DOTENV_FILENAME = ".env"


class EnvFileError(FrontdeskError, ValueError):
    """A ``.env`` file exists but cannot be read as text."""


def load_env_files(home: str | os.PathLike[str] | None = None) -> list[Path]:
    """Set the variables of ``./.env`` and then of ``<home>/.env`` (``home``, else
    ``$FRONTDESK_HOME`` as it is after ``./.env``) that the environment does not have yet.

    Returns the files read (those that exist, each once).
    """
    read: list[Path] = []
    _load(Path.cwd() / DOTENV_FILENAME, read)
    if home is None:
        home = os.environ.get(HOME_ENV) or None  # possibly set by ./.env just now
    if home is not None:
        _load(Path(home).expanduser() / DOTENV_FILENAME, read)
    return read


def _load(path: Path, read: list[Path]) -> None:
    path = path.resolve()
    if path in read or not path.is_file():
        return
    try:
        load_dotenv(path, override=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvFileError(f"cannot read {path}: {exc}") from exc
    read.append(path)


__all__ = ["DOTENV_FILENAME", "EnvFileError", "load_env_files"]
