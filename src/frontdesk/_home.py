"""Where frontdesk keeps its files."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "FRONTDESK_HOME"


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """Return the frontdesk home: ``home``, else ``$FRONTDESK_HOME``, else ``./.frontdesk``.

    The directory is created if it does not exist.
    """
    if home is None:
        home = os.environ.get(HOME_ENV) or ".frontdesk"
    path = Path(home).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
