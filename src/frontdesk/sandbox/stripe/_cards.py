"""Stripe's test payment methods (``pm_card_visa``, ``pm_card_createDispute``, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from ._core import Operation, new_id
from ._store import StripeObject


@dataclass(frozen=True)
class TestDispute:
    """The dispute a test card opens as soon as it is charged."""

    reason: str
    status: str
    network_reason_code: str | None


@dataclass(frozen=True)
class Decline:
    """How a test card is declined."""

    code: str
    decline_code: str
    message: str


@dataclass(frozen=True)
class TestCard:
    """The card behind a test payment method token."""

    brand: str
    last4: str
    funding: str = "credit"
    decline: Decline | None = None
    dispute: TestDispute | None = None


_DECLINED = "Your card was declined."
_FRAUD = TestDispute("fraudulent", "needs_response", "10.4")
_NOT_RECEIVED = TestDispute("product_not_received", "needs_response", "13.1")
_INQUIRY = TestDispute("general", "warning_needs_response", None)

TEST_CARDS: dict[str, TestCard] = {
    "pm_card_visa": TestCard("visa", "4242"),
    "pm_card_visa_debit": TestCard("visa", "5556", funding="debit"),
    "pm_card_mastercard": TestCard("mastercard", "4444"),
    "pm_card_mastercard_debit": TestCard("mastercard", "8210", funding="debit"),
    "pm_card_amex": TestCard("amex", "8431"),
    "pm_card_discover": TestCard("discover", "1117"),
    "pm_card_jcb": TestCard("jcb", "0000"),
    "pm_card_unionpay": TestCard("unionpay", "0005"),
    "pm_card_chargeDeclined": TestCard(
        "visa", "0002", decline=Decline("card_declined", "generic_decline", _DECLINED)
    ),
    "pm_card_chargeDeclinedInsufficientFunds": TestCard(
        "visa",
        "9995",
        decline=Decline("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    ),
    "pm_card_chargeDeclinedFraudulent": TestCard(
        "visa", "0019", decline=Decline("card_declined", "fraudulent", _DECLINED)
    ),
    "pm_card_chargeDeclinedLostCard": TestCard(
        "visa", "9987", decline=Decline("card_declined", "lost_card", _DECLINED)
    ),
    "pm_card_chargeDeclinedStolenCard": TestCard(
        "visa", "9979", decline=Decline("card_declined", "stolen_card", _DECLINED)
    ),
    "pm_card_chargeDeclinedExpiredCard": TestCard(
        "visa", "0069", decline=Decline("expired_card", "expired_card", "Your card has expired.")
    ),
    "pm_card_chargeDeclinedIncorrectCvc": TestCard(
        "visa",
        "0127",
        decline=Decline(
            "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."
        ),
    ),
    "pm_card_createDispute": TestCard("visa", "0259", dispute=_FRAUD),
    "pm_card_createDisputeProductNotReceived": TestCard("visa", "2685", dispute=_NOT_RECEIVED),
    "pm_card_createDisputeInquiry": TestCard("visa", "1976", dispute=_INQUIRY),
}


# Every test card has a distinct last4, which identifies it again on a stored PaymentMethod.
_BY_LAST4 = {card.last4: card for card in TEST_CARDS.values()}


def card_for(payment_method: StripeObject) -> TestCard:
    """The test card a stored payment method was created from."""
    return _BY_LAST4[payment_method["card"]["last4"]]


def resolve_payment_method(op: Operation, reference: str, param: str) -> StripeObject:
    """Turn a test token into a new PaymentMethod (as Stripe does), or load a stored one."""
    card = TEST_CARDS.get(reference)
    if card is None:
        return op.require("payment_method", reference, param)
    method = {
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {"address": None, "email": None, "name": None, "phone": None},
        "card": {
            "brand": card.brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": "US",
            "display_brand": card.brand,
            "exp_month": 12,
            "exp_year": 2034,
            "funding": card.funding,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "wallet": None,
        },
        "created": op.now,
        "customer": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }
    op.tx.insert(method)
    return method
