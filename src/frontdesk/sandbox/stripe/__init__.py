"""A local Stripe-compatible sandbox server for the official ``stripe`` SDK.

Serves PaymentIntents, Charges, Disputes, Refunds, webhook endpoints and events with
Stripe's wire format, test payment methods and signed webhooks, keeping state in SQLite::

    with running_sandbox(tmp_path / "stripe.db") as sandbox:
        client = sandbox.client()
        intent = client.v1.payment_intents.create(
            params={"amount": 2000, "currency": "usd", "payment_method": "pm_card_createDispute",
                    "confirm": True, "off_session": True}
        )
"""

from ._app import ROUTES, Route, create_app, default_db_path
from ._cards import TEST_CARDS, TestCard
from ._disputes import EVIDENCE_FIELDS
from ._server import (
    DEFAULT_API_KEY,
    DEFAULT_SANDBOX_URL,
    SandboxServer,
    configure_stripe,
    running_sandbox,
    serve,
)
from ._webhooks import sign_payload

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_SANDBOX_URL",
    "EVIDENCE_FIELDS",
    "ROUTES",
    "TEST_CARDS",
    "Route",
    "SandboxServer",
    "TestCard",
    "configure_stripe",
    "create_app",
    "default_db_path",
    "running_sandbox",
    "serve",
    "sign_payload",
]
