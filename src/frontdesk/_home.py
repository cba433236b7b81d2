"""Where frontdesk keeps its files."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InvalidInput

HOME_ENV = "FRONTDESK_HOME"


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """Return the frontdesk home: ``home``, else ``$FRONTDESK_HOME``, else ``./.frontdesk``.

    The directory is created if it does not exist. A home that is empty, is a file, or cannot
    be created raises :class:`~frontdesk.errors.InvalidInput` saying which path and why.
    """
    if home is None:
        home = os.environ.get(HOME_ENV) or ".frontdesk"
    if not os.fspath(home):
        raise InvalidInput("the frontdesk home is an empty path: give a directory")
    path = Path(home).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise InvalidInput(f"the frontdesk home {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(
            f"cannot use {path} as the frontdesk home: {exc.strerror or exc}"
        ) from exc
    return path


_active_home: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "frontdesk_active_home", default=None
)


def current_home() -> Path:
    """The home of the runtime driving the current run, else :func:`resolve_home`.

    App tools call this to find their databases, so a runtime created with
    ``AgentRuntime(home=...)`` keeps its apps' data beside its own store.
    """
    return _active_home.get() or resolve_home()


@contextmanager
def active_home(home: Path) -> Iterator[None]:
    """Make ``home`` the value of :func:`current_home` within the block."""
    token = _active_home.set(home)
    try:
        yield
    finally:
        _active_home.reset(token)
