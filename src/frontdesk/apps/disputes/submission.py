"""Submitting a dispute's staged evidence: one small run per dispute that waits for a person.

A submission to the card issuer is final, so a person approves it. That approval must not
hold back the investigator's report, so it is not asked for inside the dispute's run: the
investigator stages the evidence (``submit=false``), calls ``request_evidence_submission`` and
writes its report, which completes the dispute's run. The request starts the submission run
``dispute-submit:<dispute id>`` (at most once per dispute, from any process), whose only step
is the approval-gated ``submit_dispute_evidence``; its input names the dispute and the
dispute's run. The run waits in the approvals inbox:

    frontdesk approvals approve dispute-submit:dp_...     # submits, once
    frontdesk approvals reject dispute-submit:dp_... --reason "..."   # evidence stays staged

Approving runs the submit tool once, with the tool call's idempotency key, so even a crash
between Stripe's answer and the journal submits once. Submission runs run on the rules model
(``rules.SUBMISSION_RULES``): their one decision is fixed, so no LLM is asked to make it.
"""

from __future__ import annotations

import contextvars
import json
from dataclasses import asdict, dataclass
from typing import Any

import stripe
from agents import Agent, FunctionToolResult, ModelSettings, RunContextWrapper, function_tool
from agents.agent import ToolsToFinalOutputResult

from ..._scope import current_runtime
from ...engine._types import RunSpec
from ...errors import FrontdeskError, RunNotFound
from ...models._select import RULES
from ...runtime import AgentRuntime, RunResult
from ...tools import current_tool_call_or_none
from ._stripe import error_message, error_result, stripe_client
from .tools import OPEN_STATUSES, submit_dispute_evidence

SUBMISSION_PREFIX = "dispute-submit:"
REQUEST_WAIT_SECONDS = 60.0
"""How long a request waits for its new run to reach the approvals inbox."""
SUBMISSION_INSTRUCTIONS = (
    "The input is a dispute as JSON. Submit the evidence staged on it with "
    "submit_dispute_evidence, passing its dispute_id. A person approves the submission first."
)


class SubmissionNotPossible(FrontdeskError, ValueError):
    """The dispute has no staged evidence to submit, or cannot take a submission any more."""


@dataclass(frozen=True)
class SubmissionRequest:
    """The run that submits a dispute's staged evidence once a person approves."""

    dispute_id: str
    execution_id: str
    """``dispute-submit:<dispute id>``: approve or reject it with this id."""
    dispute_run: str | None
    """The execution id of the dispute's run that asked for the submission."""
    status: str
    """The submission run's status: ``waiting_approval`` until a person decides."""
    approval_id: str | None = None
    """The approval request, once the run asked for it."""
    decision: str | None = None
    """The approval's status: ``pending``, ``approved`` or ``rejected``."""
    outcome: str | None = None
    """What happened once decided: submitted, or not and why."""
    created: bool = False
    """Whether this request started the run (False: the dispute already had one)."""

    @classmethod
    def of(cls, run: RunResult, created: bool = False) -> SubmissionRequest:
        """The request a submission run stands for."""
        data = _input(run)
        approval = run.approvals[-1] if run.approvals else None
        return cls(
            dispute_id=str(data.get("dispute_id") or run.execution_id[len(SUBMISSION_PREFIX) :]),
            execution_id=run.execution_id,
            dispute_run=data.get("dispute_run"),
            status=run.status,
            approval_id=approval.approval_id if approval is not None else None,
            decision=approval.status if approval is not None else None,
            outcome=run.output if isinstance(run.output, str) else None,
            created=created,
        )

    @property
    def waiting(self) -> bool:
        """Whether the submission waits for a person's decision."""
        return self.status == "waiting_approval"

    def to_dict(self) -> dict[str, Any]:
        """The request as a tool result."""
        return asdict(self)


def submission_execution_id(dispute_id: str) -> str:
    """The execution id of the run that submits ``dispute_id``'s evidence."""
    return f"{SUBMISSION_PREFIX}{dispute_id}"


def _outcome(
    context: RunContextWrapper[Any], results: list[FunctionToolResult]
) -> ToolsToFinalOutputResult:
    """The submit tool's result, said in a sentence, is the run's output: no model call after
    the decision."""
    if not results:
        return ToolsToFinalOutputResult(is_final_output=False)
    output = results[0].output
    if isinstance(output, dict) and error_message(output) is None:
        text = (
            f"Submitted the evidence on {output.get('id')} to the card issuer; the dispute is "
            f"now {output.get('status')}."
        )
    elif isinstance(output, dict):
        text = f"Not submitted. Stripe said: {error_message(output)}"
    else:
        text = f"Not submitted; the evidence stays staged. {output}"
    return ToolsToFinalOutputResult(is_final_output=True, final_output=text)


submission_agent = Agent(
    name="Evidence Submission Agent",
    instructions=SUBMISSION_INSTRUCTIONS,
    model="gpt-4o",
    tools=[submit_dispute_evidence],
    model_settings=ModelSettings(tool_choice=submit_dispute_evidence.name),
    tool_use_behavior=_outcome,
)


def find_submission(runtime: AgentRuntime, dispute_id: str) -> SubmissionRequest | None:
    """The dispute's submission request, or None if none was made."""
    try:
        return SubmissionRequest.of(runtime.get(submission_execution_id(dispute_id)))
    except RunNotFound:
        return None


def request_submission(
    dispute_id: str,
    *,
    dispute_run: str | None = None,
    runtime: AgentRuntime | None = None,
    wait: float = REQUEST_WAIT_SECONDS,
) -> SubmissionRequest:
    """Ask a person to approve submitting the evidence staged on ``dispute_id``.

    Starts the submission run in ``runtime`` (else the runtime driving the current tool call,
    see :func:`frontdesk.current_runtime`) unless the dispute has one, and returns once the
    run waits in the approvals inbox (or after ``wait`` seconds). Raises
    :class:`SubmissionNotPossible` when nothing is staged or the dispute is closed or already
    submitted, and ``stripe.StripeError`` when Stripe cannot be asked.
    """
    dispute_id = dispute_id.strip()
    runtime = runtime if runtime is not None else current_runtime()
    # A fresh context: the submission run must not see the caller's run or tool call.
    return contextvars.Context().run(_request, runtime, dispute_id, dispute_run, wait)


def _request(
    runtime: AgentRuntime, dispute_id: str, dispute_run: str | None, wait: float
) -> SubmissionRequest:
    existing = find_submission(runtime, dispute_id)
    if existing is not None:
        return existing
    _require_staged(dispute_id)
    message = json.dumps({"dispute_id": dispute_id, "dispute_run": dispute_run})
    # On the rules model whatever the runtime's: the run's one decision is fixed.
    spec = RunSpec(
        agent=submission_agent,
        agent_ref=runtime.registry.reference(submission_agent),
        input=message,
        execution_id=submission_execution_id(dispute_id),
        model=RULES,
    )
    handle = runtime.start_spec(spec)
    try:
        run = handle.wait(timeout=wait) if handle.created else handle.get()
    except TimeoutError:
        run = handle.get()  # it reaches the inbox once a process resumes it
    return SubmissionRequest.of(run, created=handle.created)


def _require_staged(dispute_id: str) -> None:
    dispute = stripe_client().v1.disputes.retrieve(dispute_id)
    details = dispute.evidence_details
    if dispute.status not in OPEN_STATUSES:
        raise SubmissionNotPossible(
            f"Dispute {dispute_id} is {dispute.status}; it takes no more evidence."
        )
    if details.submission_count:
        raise SubmissionNotPossible(f"The evidence on {dispute_id} was already submitted.")
    if not details.has_evidence:
        raise SubmissionNotPossible(
            f"No evidence is staged on {dispute_id}; stage it with stage_dispute_evidence first."
        )


@function_tool
def request_evidence_submission(dispute_id: str) -> dict[str, Any]:
    """
    Ask a person to approve submitting the evidence staged on a Stripe dispute to the card
    issuer. The request waits in the approvals inbox; this returns at once with it (its
    execution_id and status), or with why it cannot be made (e.g. nothing is staged).
    """
    call = current_tool_call_or_none()
    try:
        request = request_submission(dispute_id, dispute_run=call.execution_id if call else None)
    except SubmissionNotPossible as exc:
        return {"error": {"message": str(exc)}}
    except stripe.StripeError as exc:
        return error_result(exc)
    return request.to_dict()


def _input(run: RunResult) -> dict[str, Any]:
    try:
        data = json.loads(run.input) if isinstance(run.input, str) else None
    except json.JSONDecodeError:
        data = None
    return data if isinstance(data, dict) else {}


__all__ = [
    "SUBMISSION_PREFIX",
    "SubmissionNotPossible",
    "SubmissionRequest",
    "find_submission",
    "request_evidence_submission",
    "request_submission",
    "submission_agent",
    "submission_execution_id",
]
