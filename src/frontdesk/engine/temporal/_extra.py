"""The ``temporal`` extra: a clear error naming it when ``temporalio`` is not installed."""

from __future__ import annotations

from ...errors import FrontdeskError

INSTALL_HINT = "pip install 'frontdesk[temporal]'"
"""The command that installs what the Temporal engine needs."""


class TemporalNotInstalled(FrontdeskError, ImportError):
    """``temporalio`` (or its OpenAI Agents plugin) is missing: the ``temporal`` extra."""


def missing_extra(exc: ImportError) -> TemporalNotInstalled:
    """The error to raise (``from exc``) when importing ``temporalio`` failed."""
    missing = exc.name or "temporalio"
    return TemporalNotInstalled(
        f"the Temporal engine needs {missing!r}, which is not installed: {INSTALL_HINT}",
        name=exc.name,
    )


__all__ = ["INSTALL_HINT", "TemporalNotInstalled", "missing_extra"]
