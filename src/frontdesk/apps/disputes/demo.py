"""The two dispute scenarios, ready to run: an unshipped order and a delivered one.

:func:`stripe_for_demo` provides a Stripe to run them against: Stripe test mode when
``STRIPE_SECRET_KEY`` is set, else the sandbox at ``FRONTDESK_STRIPE_API_BASE`` if one answers
there, else a sandbox started for the duration (its state kept in the home, so a later
``frontdesk stripe-sandbox`` serves the same disputes). :func:`play_scenario` runs one
scenario through to the end, as ``frontdesk demo`` does.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import stripe

from ...sandbox.stripe import running_sandbox
from ...sandbox.stripe._app import DB_FILENAME
from ._stripe import (
    API_BASE_ENV,
    StripeNotConfigured,
    StripeSettings,
    format_amount,
    stripe_client,
)
from .workflow import ProcessedDispute, run_dispute

if TYPE_CHECKING:
    from ...runtime import AgentRuntime, RunResult


@dataclass(frozen=True)
class Scenario:
    """A disputed payment for one of the seeded orders."""

    order_id: str
    payment_method: str
    """A Stripe test card that opens a dispute as soon as it is charged."""
    expect: str


SCENARIOS = (
    Scenario(
        "1234", "pm_card_createDisputeProductNotReceived", "accepted: the order never shipped"
    ),
    Scenario("1121", "pm_card_createDispute", "contested: delivered, with the customer's records"),
)


@contextmanager
def stripe_for_demo(home: Path) -> Iterator[str]:
    """A Stripe to run the scenarios against, for the duration; yields its address."""
    settings = StripeSettings.from_env()
    if settings.api_key.startswith(("sk_live_", "rk_live_")):
        raise StripeNotConfigured("the demo creates test payments; use a test key (sk_test_...)")
    if not settings.is_sandbox or _answers():
        yield settings.api_base
        return
    previous = os.environ.get(API_BASE_ENV)
    with running_sandbox(home / DB_FILENAME) as sandbox:
        os.environ[API_BASE_ENV] = sandbox.url
        try:
            yield sandbox.url
        finally:
            if previous is None:
                os.environ.pop(API_BASE_ENV, None)
            else:
                os.environ[API_BASE_ENV] = previous


def create_disputed_payment(scenario: Scenario) -> str:
    """Charge a test card that opens a dispute, for the scenario's order; returns its id."""
    payment = stripe_client().v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "payment_method": scenario.payment_method,
            "confirm": True,
            "metadata": {"order_id": scenario.order_id},
            "off_session": True,
            "automatic_payment_methods": {"enabled": True},
        }
    )
    return payment.id


@dataclass(frozen=True)
class ScenarioOutcome:
    """How one scenario ended."""

    scenario: Scenario
    """The scenario played."""
    processed: ProcessedDispute
    """The dispute, its run, and the evidence submission it asked for, if any."""
    submitted: RunResult | None
    """The submission run once approved and finished; None when there was none to approve."""
    dispute_status: str
    """The dispute's status at Stripe afterwards (``lost`` once accepted, ``under_review``
    once the evidence went in)."""
    amount: str
    """The disputed amount, readable (``20.00 USD``)."""


def play_scenario(
    scenario: Scenario,
    runtime: AgentRuntime,
    *,
    approve_as: str | None = "demo",
    timeout: float = 120.0,
) -> ScenarioOutcome:
    """Charge the scenario's disputed payment, triage its dispute on ``runtime`` and, when the
    investigator asked to submit evidence, approve that as ``approve_as`` (unless None) and
    wait for the submission."""
    intent_id = create_disputed_payment(scenario)
    processed = asyncio.run(run_dispute(intent_id, runtime=runtime))
    submitted = None
    request = processed.submission
    if approve_as is not None and request is not None and request.waiting:
        runtime.approve(request.execution_id, by=approve_as, note="evidence reviewed")
        submitted = runtime.handle(request.execution_id).result(timeout=timeout)
    dispute_id = str(processed.relevant_data["dispute_id"])
    dispute = stripe_client().v1.disputes.retrieve(dispute_id)
    amount = format_amount(dispute.amount, dispute.currency)
    return ScenarioOutcome(scenario, processed, submitted, str(dispute.status), amount)


def _answers() -> bool:
    try:
        stripe_client().v1.events.list(params={"limit": 1}, options={"max_network_retries": 0})
    except stripe.APIConnectionError:
        return False
    return True
