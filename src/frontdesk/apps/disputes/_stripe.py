"""Which Stripe the disputes app talks to, and how its answers reach the agents.

With ``STRIPE_SECRET_KEY`` set the app talks to Stripe with that key. Without it, it talks to
the local sandbox at ``FRONTDESK_STRIPE_API_BASE`` (default ``http://127.0.0.1:12111``, where
``frontdesk stripe-sandbox`` listens) with a sandbox test key. Both are read at every call, so
a process can be pointed elsewhere without restarting. The only key ever sent is the one in
``STRIPE_SECRET_KEY`` or the sandbox's test key, and a live key is never sent anywhere but
Stripe itself.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import stripe

from ...errors import FrontdeskError
from ...sandbox.stripe import DEFAULT_API_KEY, DEFAULT_SANDBOX_URL
from ...tools import current_tool_call_or_none

SECRET_KEY_ENV = "STRIPE_SECRET_KEY"
API_BASE_ENV = "FRONTDESK_STRIPE_API_BASE"
STRIPE_API_BASE = "https://api.stripe.com"
MAX_NETWORK_RETRIES = 2
# Currencies whose amounts Stripe counts in whole units rather than cents.
_ZERO_DECIMAL = frozenset(
    ("bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
     "xaf", "xof", "xpf")
)  # fmt: skip


class StripeNotConfigured(FrontdeskError, RuntimeError):
    """The Stripe settings would send a key where it must not go."""


@dataclass(frozen=True)
class StripeSettings:
    """Where Stripe requests go and with which key."""

    api_key: str
    api_base: str

    @property
    def is_sandbox(self) -> bool:
        """Whether requests go to a local sandbox rather than Stripe."""
        return self.api_base != STRIPE_API_BASE

    @classmethod
    def from_env(cls) -> StripeSettings:
        """The settings in the environment now (see the module docstring)."""
        key = os.environ.get(SECRET_KEY_ENV, "").strip()
        base = os.environ.get(API_BASE_ENV, "").strip().rstrip("/")
        if not key:
            return cls(api_key=DEFAULT_API_KEY, api_base=base or DEFAULT_SANDBOX_URL)
        settings = cls(api_key=key, api_base=base or STRIPE_API_BASE)
        if key.startswith(("sk_live_", "rk_live_")) and settings.is_sandbox:
            raise StripeNotConfigured(
                f"{SECRET_KEY_ENV} is a live key and {API_BASE_ENV} points at "
                f"{settings.api_base}; a live key is only ever sent to {STRIPE_API_BASE}"
            )
        return settings


def stripe_client() -> stripe.StripeClient:
    """A Stripe client for the settings in the environment now."""
    return _client(StripeSettings.from_env())


@functools.lru_cache(maxsize=8)
def _client(settings: StripeSettings) -> stripe.StripeClient:
    base = settings.api_base
    return stripe.StripeClient(
        settings.api_key,
        base_addresses={"api": base, "files": base, "connect": base},
        max_network_retries=MAX_NETWORK_RETRIES,
    )


def write_options() -> stripe.RequestOptions:
    """Request options for a Stripe write from a tool: the tool call's idempotency key.

    The key is the same on every retry and after crash recovery, so Stripe performs the write
    once and replays its first answer.
    """
    call = current_tool_call_or_none()
    return stripe.RequestOptions(idempotency_key=call.idempotency_key) if call else {}


def error_result(exc: stripe.StripeError) -> dict[str, Any]:
    """A tool result that shows the model Stripe's own error message."""
    error = exc.error
    return {
        "error": {
            "message": exc.user_message or str(exc) or type(exc).__name__,
            "type": getattr(error, "type", None) or _error_type(exc),
            "code": exc.code,
            "param": getattr(error, "param", None),
        },
        "http_status": exc.http_status,
    }


def error_message(result: Any) -> str | None:
    """Stripe's message when a tool result is an error, else None."""
    if isinstance(result, dict) and isinstance(result.get("error"), dict):
        message = result["error"].get("message")
        return str(message) if message else "unknown Stripe error"
    return None


def _error_type(exc: stripe.StripeError) -> str:
    if isinstance(exc, stripe.APIConnectionError):
        return "api_connection_error"
    if isinstance(exc, stripe.AuthenticationError):
        return "authentication_error"
    return "api_error"


def format_amount(amount: int | None, currency: str | None) -> str:
    """``(2000, "usd")`` -> ``"20.00 USD"``: Stripe's minor units as a readable amount."""
    if amount is None:
        return "unknown amount"
    code = (currency or "").lower()
    if code in _ZERO_DECIMAL:
        return f"{amount:,} {code.upper()}"
    return f"{amount / 100:,.2f} {code.upper()}".rstrip()
