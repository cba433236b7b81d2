"""A transaction's statements, as compiled from typed writes, and the notifications it sends.

:class:`Compiled` collects the statements of one transaction in order, the guard each must
pass, the ``(channel, run)`` notifications to send once it commits (each once), and the runs
whose row it already locks (see :mod:`._compile`). A guard is checked by the client from its
statement's result, or, in a transaction sent whole with its ``COMMIT``, by the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._writes import Write
from ._schema import GUARD_FUNCTION

GUARDED = f"WITH guarded AS ({{}}) SELECT {GUARD_FUNCTION}(EXISTS (SELECT 1 FROM guarded), %s)"
"""A guarded statement checked on the server: it raises
:data:`~._schema.GUARD_REFUSED`, with the statement's number as the detail, when the
statement returns no row. A data-modifying statement in ``WITH`` runs to completion whatever
reads it; a ``SELECT ... FOR NO KEY UPDATE`` there locks the one row it finds."""


@dataclass(frozen=True)
class Statement:
    """One SQL statement, its parameters, and the guard its result must pass (if any)."""

    sql: str
    """The statement, with ``%s`` placeholders."""
    params: tuple[Any, ...] = ()
    """Its parameters."""
    guard: Write | None = None
    """The write whose statement must return a row, or the transaction is refused."""


@dataclass
class Compiled:
    """The statements of a transaction, and the notifications it sends once committed."""

    statements: list[Statement] = field(default_factory=list)
    """In order."""
    notices: dict[tuple[str, str], None] = field(default_factory=dict)
    """``(channel, execution_id)`` pairs, each once, in order."""
    locked: set[str] = field(default_factory=set)
    """Runs whose row the transaction already locks."""
    server_guards: bool = False
    """Whether each guard is checked by the server, which then refuses the whole transaction
    (:data:`GUARDED`), rather than from the statement's result by the client."""

    def add(self, sql: str, *params: Any, guard: Write | None = None) -> None:
        """Append a statement; a guarded one must return a row, or the transaction is
        refused."""
        if guard is not None and self.server_guards:
            sql, params = GUARDED.format(sql), (*params, len(self.statements))
        self.statements.append(Statement(sql, params, guard))

    def notify(self, channel: str, execution_id: str) -> None:
        """Notify ``channel`` about the run once the transaction commits."""
        self.notices[(channel, execution_id)] = None

    def lock_run(self, execution_id: str) -> None:
        """Lock the run's row for the rest of the transaction (once)."""
        if execution_id not in self.locked:
            self.locked.add(execution_id)
            self.add("SELECT 1 FROM runs WHERE execution_id = %s FOR NO KEY UPDATE", execution_id)

    def finish(self) -> None:
        """Append the statement that sends the notifications, if any."""
        if self.notices:
            channels = [channel for channel, _ in self.notices]
            ids = [execution_id for _, execution_id in self.notices]
            self.add(
                "SELECT pg_notify(c, p) FROM unnest(%s::text[], %s::text[]) AS n(c, p)",
                channels,
                ids,
            )


__all__ = ["GUARDED", "Compiled", "Statement"]
