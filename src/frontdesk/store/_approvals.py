"""Approval records: what a request holds, and the checks a decision must pass.

An approval row is written when a run pauses for a tool call. It keeps everything a decision
needs in any process: the call's arguments, the schema they must match (to check arguments a
reviewer edits), and, for a tool with an approval timeout, the deadline and what happens at it.
Deciding (by a person or by the clock) is in :mod:`._decisions`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from jsonschema import validators
from jsonschema.exceptions import SchemaError

from .._text import require_text
from ..errors import InvalidInput

if TYPE_CHECKING:
    from ._writes import RequestApproval

TIMEOUT_DECIDER = "system:timeout"
"""Who decided an approval that nobody decided before its deadline."""
RESERVED_DECIDER_PREFIX = "system:"
"""Decider names that frontdesk keeps for its own decisions."""
MAX_EDITED_ARGS_CHARS = 100_000
"""The most JSON text edited arguments may take."""


@dataclass(frozen=True)
class ApprovalRecord:
    """A request for human approval of one tool call, and its decision."""

    approval_id: str
    """The approval's id (``apv_...``)."""
    execution_id: str
    """The run that asks."""
    call_key: str
    """The tool call's key in the run (``<model call>:<call id>``)."""
    call_id: str
    """The tool call's id as the model gave it."""
    agent: str | None
    """The agent that called the tool."""
    tool_name: str
    """The tool that waits for the decision."""
    args: dict[str, Any]
    """The call's arguments, as the model asked for them."""
    status: str
    """``pending``, ``approved``, ``rejected`` or ``cancelled`` (the run was cancelled)."""
    requested_at: float
    """When the run asked."""
    decided_at: float | None
    """When someone decided."""
    decided_by: str | None
    """Who decided (``system:timeout`` for a call nobody decided before its deadline)."""
    note: str | None
    """The approver's note."""
    reason: str | None
    """Why the call was rejected (the model receives it)."""
    edited_args: dict[str, Any] | None = None
    """The arguments the call ran with when the approver edited them; None if it ran as asked."""
    deadline: float | None = None
    """When the request times out (Unix time); None if it waits for as long as it takes."""
    on_timeout: str | None = None
    """What happens at the deadline: ``reject`` the call, or ``escalate`` (it stays pending)."""
    escalated_at: float | None = None
    """When the request was escalated for passing its deadline undecided."""
    args_schema: dict[str, Any] | None = None
    """The JSON schema of the tool's arguments when the call was made; edits must match it."""

    @property
    def timeout(self) -> timedelta | None:
        """How long the request may wait for a decision, if it has a deadline."""
        if self.deadline is None:
            return None
        return timedelta(seconds=round(self.deadline - self.requested_at, 3))

    @property
    def escalated(self) -> bool:
        """Whether the request passed its deadline and was escalated."""
        return self.escalated_at is not None


APPROVAL_COLUMNS = (
    "approval_id, execution_id, call_key, call_id, agent, tool_name, args_json, status, "
    "requested_at, decided_at, decided_by, note, reason, edited_args_json, deadline, on_timeout, "
    "escalated_at, args_schema_json"
)
"""The approval row's columns, in :class:`ApprovalRecord`'s field order (the same in every
backend's schema)."""

_JSON_COLUMNS = (6, 13, 17)


def approval_from_row(row: tuple[Any, ...]) -> ApprovalRecord:
    """An :class:`ApprovalRecord` from a row selected with :data:`APPROVAL_COLUMNS`."""
    values = list(row)
    for index in _JSON_COLUMNS:
        if values[index] is not None:
            values[index] = json.loads(values[index])
    return ApprovalRecord(*values)


def request_op(record: ApprovalRecord) -> RequestApproval:
    """The write that stores a new pending request (a call already asked about is kept)."""
    from ._writes import RequestApproval

    return RequestApproval(record)


def timeout_reason(record: ApprovalRecord) -> str:
    """What the model receives for a call nobody decided before its deadline."""
    return f"approval timed out after {record.timeout} (nobody decided in time)"


def check_decider(by: str | None) -> None:
    """Refuse a decider name frontdesk keeps for its own decisions."""
    if by is not None and by.strip().lower().startswith(RESERVED_DECIDER_PREFIX):
        raise InvalidInput(
            f"decider {by!r}: names starting with {RESERVED_DECIDER_PREFIX!r} are kept for "
            "frontdesk's own decisions; nothing changed"
        )


def edited_arguments(record: ApprovalRecord, edits: Any) -> dict[str, Any] | None:
    """The arguments the call runs with once ``edits`` replace some of the asked ones.

    ``edits`` is a JSON object; each key given replaces the model's value, the others are kept.
    The result must match the tool's argument schema, except that an argument the model itself
    left out is not required of the reviewer (the tool fills its default, as it would have).
    Returns None when the edits change nothing. Raises :class:`InvalidInput` otherwise.
    """
    where = f"approval {record.approval_id} ({record.tool_name})"
    if not isinstance(edits, dict):
        raise InvalidInput(
            f"the edited arguments for {where} must be a JSON object of argument names to "
            f"values, got {type(edits).__name__}; nothing changed"
        )
    try:
        text = json.dumps(edits, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"the edited arguments for {where} are not JSON ({exc}); nothing changed"
        ) from exc
    require_text(text, "the edited arguments")
    if len(text) > MAX_EDITED_ARGS_CHARS:
        raise InvalidInput(
            f"the edited arguments for {where} take {len(text)} characters of JSON; the limit "
            f"is {MAX_EDITED_ARGS_CHARS}; nothing changed"
        )
    if record.args_schema is None:
        raise InvalidInput(
            f"{where} has no argument schema to check edits against (it was requested before "
            "frontdesk recorded schemas, or the tool is not a function tool): approve it as "
            "asked or reject it; nothing changed"
        )
    merged = {**record.args, **json.loads(text)}
    problems = schema_problems(record.args_schema, merged, asked=set(record.args) | set(edits))
    if problems:
        raise InvalidInput(
            f"the edited arguments for {where} do not match the tool's schema: "
            f"{'; '.join(problems)}; nothing changed"
        )
    return None if merged == record.args else merged


def schema_problems(schema: dict[str, Any], args: dict[str, Any], *, asked: set[str]) -> list[str]:
    """What makes ``args`` invalid for ``schema`` (at most five, one line each), requiring
    only the arguments named in ``asked``."""
    relaxed = dict(schema)
    if isinstance(schema.get("required"), list):
        relaxed["required"] = [name for name in schema["required"] if name in asked]
    try:
        validator_class = validators.validator_for(relaxed)
        validator_class.check_schema(relaxed)
    except SchemaError as exc:
        return [f"the tool's schema itself is invalid ({exc.message})"]
    errors = sorted(validator_class(relaxed).iter_errors(args), key=lambda e: list(e.path))
    return [
        f"{'.'.join(str(p) for p in error.path) or 'arguments'}: {error.message}"
        for error in errors[:5]
    ]
