"""The frontdesk HTTP server: the console and its JSON API, health, and Stripe webhooks.

    from frontdesk import AgentRuntime
    from frontdesk.server import create_app

    app = create_app(AgentRuntime(model="rules"))   # serve with uvicorn

``frontdesk serve`` runs it on uvicorn with a runtime that drives the runs it starts. Every
route but the webhook needs the API token (:func:`load_token`).
"""

from .._prices import DEFAULT_PRICES as PRICES
from .._prices import Price, Prices, estimate_cost
from ._app import WEBHOOK_SECRET_ENV, create_app
from ._auth import TOKEN_ENV, ApiToken, bind_warning, load_token
from ._console import install_console

__all__ = [
    "PRICES",
    "TOKEN_ENV",
    "WEBHOOK_SECRET_ENV",
    "ApiToken",
    "Price",
    "Prices",
    "bind_warning",
    "create_app",
    "estimate_cost",
    "install_console",
    "load_token",
]
