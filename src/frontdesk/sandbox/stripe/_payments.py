"""PaymentIntents, Charges and Refunds."""

from __future__ import annotations

import secrets
from typing import Any

from ._cards import Decline, TestCard, card_for, resolve_payment_method
from ._core import Operation, new_id
from ._disputes import open_dispute
from ._errors import StripeError, invalid_request
from ._forms import Params
from ._objects import balance_transaction, card_fee, format_amount
from ._store import StripeObject

_CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
_REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
_CONFIRM_PARAMS = (
    "payment_method",
    "off_session",
    "return_url",
    "receipt_email",
    "setup_future_usage",
    "shipping",
    "error_on_requires_action",
)
_CREATE_PARAMS = (
    *_CONFIRM_PARAMS,
    "amount",
    "currency",
    "confirm",
    "automatic_payment_methods",
    "metadata",
    "description",
    "customer",
    "payment_method_types",
    "capture_method",
    "confirmation_method",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_group",
)


def create_payment_intent(op: Operation, params: Params) -> StripeObject:
    """``POST /v1/payment_intents``: create, and with ``confirm=true`` charge, a PaymentIntent."""
    params.reject_unknown(_CREATE_PARAMS)
    amount = params.integer("amount", required=True, minimum=1)
    currency = params.string("currency", required=True)
    assert currency is not None
    if len(currency) != 3 or not currency.isalpha():
        raise invalid_request(f"Invalid currency: {currency.lower()}.", param="currency")
    capture_method = params.string(
        "capture_method", choices=("automatic", "automatic_async", "manual")
    )
    if capture_method == "manual":
        raise invalid_request(
            "The sandbox only supports automatic capture; remove capture_method=manual.",
            param="capture_method",
        )
    automatic = params.hash("automatic_payment_methods", allowed=("enabled", "allow_redirects"))
    payment_method_types = params.string_list("payment_method_types")
    if payment_method_types is not None and payment_method_types != ["card"]:
        raise invalid_request(
            "The sandbox only supports the payment method type card.", param="payment_method_types"
        )
    metadata: dict[str, str] = {}
    params.apply_metadata(metadata)
    shipping = params.hash("shipping")
    intent_id = new_id("pi")
    intent: StripeObject = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": _automatic_payment_methods(automatic),
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture_method or "automatic_async",
        "client_secret": f"{intent_id}_secret_{secrets.token_urlsafe(18)}",
        "confirmation_method": params.string("confirmation_method", choices=("automatic", "manual"))
        or "automatic",
        "created": op.now,
        "currency": currency.lower(),
        "customer": params.string("customer"),
        "description": params.string("description"),
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": _payment_method_id(op, params),
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": params.string("receipt_email"),
        "review": None,
        "setup_future_usage": params.string(
            "setup_future_usage", choices=("off_session", "on_session")
        ),
        "shipping": shipping.data if shipping else None,
        "source": None,
        "statement_descriptor": params.string("statement_descriptor", max_length=22),
        "statement_descriptor_suffix": params.string("statement_descriptor_suffix", max_length=22),
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": params.string("transfer_group"),
    }
    if intent["payment_method"] is not None:
        intent["status"] = "requires_confirmation"
    confirm = params.boolean("confirm")
    off_session = _off_session(params)
    params.boolean("error_on_requires_action")
    op.tx.insert(intent)
    op.emit("payment_intent.created", intent)
    if confirm:
        return _confirm(op, intent, off_session, params.string("return_url"))
    return intent


def confirm_payment_intent(op: Operation, params: Params, object_id: str) -> StripeObject:
    """``POST /v1/payment_intents/{id}/confirm``: charge the intent's payment method."""
    params.reject_unknown(_CONFIRM_PARAMS)
    intent = op.require("payment_intent", object_id)
    off_session = _off_session(params)
    params.boolean("error_on_requires_action")
    intent["payment_method"] = _payment_method_id(op, params) or intent["payment_method"]
    intent["receipt_email"] = params.string("receipt_email") or intent["receipt_email"]
    setup = params.string("setup_future_usage", choices=("off_session", "on_session"))
    intent["setup_future_usage"] = setup or intent["setup_future_usage"]
    if (shipping := params.hash("shipping")) is not None:
        intent["shipping"] = shipping.data
    return _confirm(op, intent, off_session, params.string("return_url"))


def _payment_method_id(op: Operation, params: Params) -> str | None:
    """The id of the ``payment_method`` sent, turning a test token into a new PaymentMethod."""
    reference = params.string("payment_method")
    if reference is None:
        return None
    return resolve_payment_method(op, reference, "payment_method")["id"]


def _automatic_payment_methods(automatic: Params | None) -> dict[str, Any] | None:
    if automatic is None:
        return None
    enabled = automatic.boolean("enabled", required=True)
    redirects = automatic.string("allow_redirects", choices=("always", "never"))
    return {"allow_redirects": redirects or "always", "enabled": enabled}


def _off_session(params: Params) -> bool | str | None:
    if params.data.get("off_session") in ("one_off", "recurring"):
        return str(params.data["off_session"])
    return params.boolean("off_session")


def _confirm(
    op: Operation, intent: StripeObject, off_session: bool | str | None, return_url: str | None
) -> StripeObject:
    if intent["status"] not in _CONFIRMABLE:
        raise invalid_request(
            f"You cannot confirm this PaymentIntent because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may be "
            f"confirmed: {', '.join(_CONFIRMABLE)}.",
            code="payment_intent_unexpected_state",
        )
    if intent["payment_method"] is None:
        raise invalid_request(
            "You cannot confirm this PaymentIntent because it's missing a payment method. You can "
            "either update the PaymentIntent with a payment method and then confirm it again, or "
            "confirm it again directly with a payment method.",
            code="payment_intent_unexpected_state",
        )
    automatic = intent["automatic_payment_methods"]
    redirects = bool(automatic and automatic["enabled"] and automatic["allow_redirects"] != "never")
    if redirects and not return_url and not off_session:
        raise invalid_request(
            "This PaymentIntent is configured to accept payment methods enabled in your "
            "Dashboard. Because some of these payment methods might redirect your customer "
            "off of your page, you must provide a `return_url`. If you don't want to accept "
            "redirect-based payment methods, set `automatic_payment_methods[enabled]` to "
            "`true` and `automatic_payment_methods[allow_redirects]` to `never`.",
            param="return_url",
        )
    method = op.require("payment_method", intent["payment_method"], "payment_method")
    card = card_for(method)
    charge = _create_charge(op, intent, method, card)
    intent["latest_charge"] = charge["id"]
    if card.decline is not None:
        _decline(op, intent, charge, method, card.decline)
    intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None)
    op.tx.update(intent)
    op.emit("charge.succeeded", charge)
    op.emit("payment_intent.succeeded", intent)
    if card.dispute is not None:
        open_dispute(op, charge, card.dispute)
    return intent


def _decline(
    op: Operation,
    intent: StripeObject,
    charge: StripeObject,
    method: StripeObject,
    decline: Decline,
) -> None:
    error = StripeError(
        402,
        decline.message,
        type="card_error",
        code=decline.code,
        executed=True,
        extra={
            "charge": charge["id"],
            "decline_code": decline.decline_code,
            "payment_method": method,
        },
    )
    intent["status"] = "requires_payment_method"
    intent["payment_method"] = None
    intent["last_payment_error"] = error.body()["error"]
    op.tx.update(intent)
    op.emit("charge.failed", charge)
    op.emit("payment_intent.payment_failed", intent)
    error.extra["payment_intent"] = intent
    raise error


def _create_charge(
    op: Operation, intent: StripeObject, method: StripeObject, card: TestCard
) -> StripeObject:
    charge_id = new_id("ch")
    decline = card.decline
    txn = None
    if decline is None:
        txn = balance_transaction(
            op,
            amount=intent["amount"],
            currency=intent["currency"],
            source=charge_id,
            type="charge",
            reporting_category="charge",
            description=intent["description"],
            fee=card_fee(intent["amount"]),
        )
    outcome = (
        {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 20,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
        if decline is None
        else {
            "network_status": "declined_by_network",
            "reason": decline.decline_code,
            "risk_level": "normal",
            "risk_score": 40,
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }
    )
    card_details = method["card"]
    charge: StripeObject = {
        "id": charge_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if decline is None else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": txn["id"] if txn else None,
        "billing_details": method["billing_details"],
        "calculated_statement_descriptor": "FRONTDESK SANDBOX",
        "captured": decline is None,
        "created": op.now,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": decline.code if decline else None,
        "failure_message": decline.message if decline else None,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": outcome,
        "paid": decline is None,
        "payment_intent": intent["id"],
        "payment_method": method["id"],
        "payment_method_details": {
            "card": {
                **{
                    k: card_details[k]
                    for k in (
                        "brand",
                        "checks",
                        "country",
                        "exp_month",
                        "exp_year",
                        "funding",
                        "last4",
                        "wallet",
                    )
                },
                "network": card.brand,
                "three_d_secure": None,
            },
            "type": "card",
        },
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "review": None,
        "shipping": intent["shipping"],
        "source_transfer": None,
        "statement_descriptor": intent["statement_descriptor"],
        "statement_descriptor_suffix": intent["statement_descriptor_suffix"],
        "status": "succeeded" if decline is None else "failed",
        "transfer_data": None,
        "transfer_group": intent["transfer_group"],
    }
    op.tx.insert(charge)
    return charge


def create_refund(op: Operation, params: Params) -> StripeObject:
    """``POST /v1/refunds``: refund all or part of a charge or PaymentIntent."""
    params.reject_unknown(("payment_intent", "charge", "amount", "reason", "metadata"))
    charge = _refundable_charge(op, params.string("payment_intent"), params.string("charge"))
    remaining = charge["amount_captured"] - charge["amount_refunded"]
    if remaining <= 0:
        raise invalid_request(
            f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
        )
    amount = params.integer("amount", minimum=1) or remaining
    if amount > remaining:
        raise invalid_request(
            f"Refund amount ({format_amount(amount, charge['currency'])}) is greater than "
            f"unrefunded amount on charge ({format_amount(remaining, charge['currency'])})",
            param="amount",
            code="amount_too_large",
        )
    reason = params.string("reason", choices=_REFUND_REASONS)
    metadata: dict[str, str] = {}
    params.apply_metadata(metadata)
    refund_id = new_id("re")
    txn = balance_transaction(
        op,
        amount=-amount,
        currency=charge["currency"],
        source=refund_id,
        type="refund",
        reporting_category="refund",
        description="REFUND FOR CHARGE",
    )
    refund: StripeObject = {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": txn["id"],
        "charge": charge["id"],
        "created": op.now,
        "currency": charge["currency"],
        "destination_details": {
            "card": {
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "metadata": metadata,
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    op.tx.insert(refund)
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
    op.tx.update(charge)
    op.emit("refund.created", refund)
    op.emit("charge.refunded", charge, previous)
    return refund


def _refundable_charge(op: Operation, intent_id: str | None, charge_id: str | None) -> StripeObject:
    if intent_id is None and charge_id is None:
        raise invalid_request(
            "One of the following params should be provided for this request: payment_intent "
            "or charge."
        )
    if intent_id is not None:
        intent = op.require("payment_intent", intent_id, "payment_intent")
        if intent["status"] != "succeeded":
            raise invalid_request(
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        if charge_id is not None and charge_id != intent["latest_charge"]:
            raise invalid_request(
                f"Charge {charge_id} does not belong to PaymentIntent {intent_id}.", param="charge"
            )
        charge_id = intent["latest_charge"]
    assert charge_id is not None
    charge = op.require("charge", charge_id, "charge")
    if charge["status"] != "succeeded":
        raise invalid_request(
            f"Charge {charge_id} did not succeed and cannot be refunded.", param="charge"
        )
    if any(not d["is_charge_refundable"] for d in op.tx.find("dispute", "charge", charge_id)):
        raise invalid_request(
            f"Charge {charge_id} has been charged back; cannot issue a refund.",
            code="charge_disputed",
        )
    return charge
