"""The frontdesk HTTP server: health, and Stripe webhooks that start dispute runs.

    from frontdesk import AgentRuntime
    from frontdesk.server import create_app

    app = create_app(AgentRuntime(model="rules"))   # serve with uvicorn

``frontdesk serve`` runs it on uvicorn with a runtime that drives the runs it starts.
"""

from ._app import WEBHOOK_SECRET_ENV, create_app

__all__ = ["WEBHOOK_SECRET_ENV", "create_app"]
