"""Shared Stripe object pieces: balance transactions, amounts and ``expand``."""

from __future__ import annotations

import copy

from ._core import Operation, new_id
from ._errors import invalid_request
from ._store import StripeObject, Transaction

# Fields that hold the id of another stored object and may be expanded, per object type.
EXPANDABLE: dict[str, frozenset[str]] = {
    "payment_intent": frozenset({"latest_charge", "payment_method"}),
    "charge": frozenset({"payment_intent", "balance_transaction"}),
    "dispute": frozenset({"charge", "payment_intent"}),
    "refund": frozenset({"charge", "payment_intent", "balance_transaction"}),
}
_MAX_EXPAND_DEPTH = 4
_ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
_CARD_FEE_PERCENT = 2.9
_CARD_FEE_FIXED = 30
DISPUTE_FEE = 1500


def format_amount(amount: int, currency: str) -> str:
    """``2000, "usd"`` -> ``$20.00``, as in Stripe's error messages."""
    text = f"{amount:,}" if currency in _ZERO_DECIMAL else f"{amount / 100:,.2f}"
    return f"${text}" if currency == "usd" else f"{text} {currency.upper()}"


def card_fee(amount: int) -> int:
    """Stripe's standard card processing fee for ``amount``."""
    return round(amount * _CARD_FEE_PERCENT / 100) + _CARD_FEE_FIXED


def balance_transaction(
    op: Operation,
    *,
    amount: int,
    currency: str,
    source: str,
    type: str,
    reporting_category: str,
    description: str | None,
    fee: int = 0,
) -> StripeObject:
    """Create and store a balance transaction (``txn_...``) for money moving on the account."""
    txn = {
        "id": new_id("txn"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": op.now + 2 * 86400,
        "created": op.now,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": (
            [
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency,
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            ]
            if fee
            else []
        ),
        "net": amount - fee,
        "reporting_category": reporting_category,
        "source": source,
        "status": "pending",
        "type": type,
    }
    op.tx.insert(txn)
    return txn


def expand(tx: Transaction, obj: StripeObject, paths: list[str]) -> StripeObject:
    """A copy of ``obj`` with the ``expand[]`` paths replaced by the objects they name."""
    if not paths:
        return obj
    result = copy.deepcopy(obj)
    for path in paths:
        parts = path.split(".")
        if len(parts) > _MAX_EXPAND_DEPTH + (result.get("object") == "list"):
            raise invalid_request(
                f"You cannot expand more than {_MAX_EXPAND_DEPTH} levels of a property. "
                f"Property: {path}",
                param="expand",
            )
        _expand_path(tx, result, parts, path)
    return result


def _expand_path(tx: Transaction, obj: StripeObject, parts: list[str], path: str) -> None:
    if obj.get("object") == "list":
        if parts[0] != "data":
            raise invalid_request(
                f"This property cannot be expanded ({parts[0]}). "
                f"You may want to try expanding 'data.{path}' instead.",
                param="expand",
            )
        for item in obj["data"]:
            if len(parts) > 1:
                _expand_path(tx, item, parts[1:], path)
        return
    name = parts[0]
    if name not in EXPANDABLE.get(obj.get("object", ""), frozenset()):
        raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
    value = obj.get(name)
    if isinstance(value, str):
        target = tx.get(value)
        if target is not None:
            obj[name] = value = target
    if isinstance(value, dict) and len(parts) > 1:
        _expand_path(tx, value, parts[1:], path)
