"""Stripe-shaped API errors raised by the sandbox handlers."""

from __future__ import annotations

from typing import Any

# Human label and default ``param`` Stripe uses in "No such ..." messages, per object type.
_RESOURCE_LABELS: dict[str, tuple[str, str]] = {
    "payment_intent": ("payment_intent", "intent"),
    "charge": ("charge", "charge"),
    "dispute": ("dispute", "dispute"),
    "refund": ("refund", "refund"),
    "event": ("event", "id"),
    "webhook_endpoint": ("webhook endpoint", "webhook_endpoint"),
    "payment_method": ("PaymentMethod", "payment_method"),
    "balance_transaction": ("balance transaction", "id"),
}


class StripeError(Exception):
    """An error the sandbox reports to the client as ``{"error": {...}}``.

    ``executed`` marks errors raised after the request started changing state (a card
    decline): like Stripe, their writes are kept and their response is saved for
    idempotent replay. Validation errors leave nothing behind.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        executed: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.executed = executed
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """Return the JSON body Stripe would send for this error."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        error.update(self.extra)
        return {"error": error}


def invalid_request(
    message: str, *, param: str | None = None, code: str | None = None, status: int = 400
) -> StripeError:
    """A 400 ``invalid_request_error``."""
    return StripeError(status, message, param=param, code=code)


def missing_param(param: str) -> StripeError:
    """A required parameter was not sent."""
    return invalid_request(
        f"Missing required param: {param}.", param=param, code="parameter_missing"
    )


def unknown_param(param: str) -> StripeError:
    """A parameter the endpoint does not accept."""
    return invalid_request(
        f"Received unknown parameter: {param}", param=param, code="parameter_unknown"
    )


def invalid_choice(param: str, choices: tuple[str, ...]) -> StripeError:
    """A parameter outside its allowed values."""
    listed = choices[0] if len(choices) == 1 else ", ".join(choices[:-1]) + f", or {choices[-1]}"
    return invalid_request(f"Invalid {param}: must be one of {listed}", param=param)


def resource_missing(object_type: str, object_id: str, param: str | None = None) -> StripeError:
    """A 404 for an id that does not exist (or is not of the expected type)."""
    label, default_param = _RESOURCE_LABELS.get(object_type, (object_type, "id"))
    return invalid_request(
        f"No such {label}: '{object_id}'",
        param=param or default_param,
        code="resource_missing",
        status=404,
    )


def authentication_error(message: str) -> StripeError:
    """A 401 for a missing, malformed or live-mode API key."""
    return StripeError(401, message)


def idempotency_error(message: str) -> StripeError:
    """A 400 ``idempotency_error`` for a reused key."""
    return StripeError(400, message, type="idempotency_error")
