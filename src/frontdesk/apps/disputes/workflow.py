"""``process_dispute``: find a payment intent's dispute and run triage on it, durably.

    payment = stripe.PaymentIntent.create(..., payment_method="pm_card_createDispute...",
                                          metadata={"order_id": "1234"}, ...)
    relevant_data, final_output = await process_dispute(payment.id, triage_agent)

The run goes through the durable runtime (``runtime=``, else the process-wide default
runtime), once per dispute: processing a dispute that already has a run reports that run.
For a contested dispute ``final_output`` is the investigator's report; the evidence is staged
and its submission waits for a person in the approvals inbox (see :mod:`.submission`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import stripe
from agents import Agent

from ...errors import FrontdeskError
from ...runtime import AgentRuntime, RunResult, default_runtime
from ._stripe import StripeSettings, stripe_client
from .intake import DisputeRun, relevant_data, start_dispute_run
from .submission import SubmissionRequest, find_submission

logger = logging.getLogger(__name__)


class DisputeLookupError(FrontdeskError, LookupError):
    """The payment intent does not exist, has no dispute, or Stripe could not be reached."""


@dataclass(frozen=True)
class ProcessedDispute:
    """A dispute and the run that handles it, as it stands."""

    relevant_data: dict[str, Any]
    run: RunResult | None
    """None while another process is starting the run."""
    started: bool
    """Whether this call started the run (False: the dispute already had one)."""
    submission: SubmissionRequest | None = None
    """The request to submit the staged evidence, when the investigator made one."""

    @property
    def final_output(self) -> Any:
        """The run's output once it completed (the investigator's report for a contested
        dispute); None before."""
        return self.run.output if self.run is not None else None


def find_dispute(payment_intent_id: str) -> dict[str, Any]:
    """The (newest) dispute of a payment intent; :class:`DisputeLookupError` if there is none."""
    client = stripe_client()
    payment_intent_id = payment_intent_id.strip()
    try:
        client.v1.payment_intents.retrieve(payment_intent_id)
        disputes = client.v1.disputes.list(params={"payment_intent": payment_intent_id}).data
    except stripe.InvalidRequestError as exc:
        raise DisputeLookupError(
            f"Payment intent {payment_intent_id!r} could not be found: {exc.user_message}"
        ) from exc
    except stripe.StripeError as exc:
        base = StripeSettings.from_env().api_base
        raise DisputeLookupError(
            f"Stripe at {base} could not be asked about payment intent {payment_intent_id!r}: "
            f"{exc.user_message or exc}"
        ) from exc
    if not disputes:
        raise DisputeLookupError(f"No dispute data found for PaymentIntent: {payment_intent_id}")
    return disputes[0].to_dict()


async def run_dispute(
    payment_intent_id: str,
    triage_agent: Agent[Any] | None = None,
    *,
    runtime: AgentRuntime | None = None,
) -> ProcessedDispute:
    """Start (or find) the dispute's run and wait until it settles; report the submission
    request it made, if any.

    Raises :class:`DisputeLookupError` when the payment intent has no dispute.
    """
    dispute = await asyncio.to_thread(find_dispute, payment_intent_id)
    data = relevant_data(dispute)
    rt = runtime or default_runtime()
    run: DisputeRun = await asyncio.to_thread(start_dispute_run, rt, data, agent=triage_agent)
    if run.started:
        await asyncio.to_thread(rt.handle(run.execution_id).wait)
    else:
        logger.info("Dispute %s is already handled by run %s", run.dispute_id, run.execution_id)
    result = rt.get(run.execution_id)
    submission = find_submission(rt, run.dispute_id)
    for waiting in (result, submission):
        if waiting is not None and waiting.status == "waiting_approval":
            logger.info(
                "Run %s waits for approval: frontdesk approvals approve %s",
                waiting.execution_id,
                waiting.execution_id,
            )
    return ProcessedDispute(data, result, started=run.started, submission=submission)


async def process_dispute(
    payment_intent_id: str,
    triage_agent: Agent[Any] | None = None,
    *,
    runtime: AgentRuntime | None = None,
) -> tuple[dict[str, Any], Any] | None:
    """Retrieve and process dispute data for a given PaymentIntent.

    Returns ``(relevant_data, final_output)``: the acceptance, or the investigator's report
    with the evidence staged and its submission waiting for a person's approval. Returns
    None, with a warning, when the payment intent does not exist or has no dispute.
    """
    try:
        processed = await run_dispute(payment_intent_id, triage_agent, runtime=runtime)
    except DisputeLookupError as exc:
        logger.warning("%s", exc)
        return None
    logger.info("WORKFLOW RESULT: %s", processed.final_output)
    return processed.relevant_data, processed.final_output
