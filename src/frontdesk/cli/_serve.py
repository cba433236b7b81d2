"""``frontdesk serve``: the HTTP server (health, Stripe webhooks) on uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from ._state import console, state


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command."""
    app.command("serve")(serve)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 6767,
) -> None:
    """Serve frontdesk over HTTP; runs it starts are driven here, orphaned runs are recovered.

    Stripe webhooks go to POST /webhooks/stripe, verified with $STRIPE_WEBHOOK_SECRET.
    """
    import uvicorn

    from ..runtime import AgentRuntime
    from ..server import create_app

    with AgentRuntime(state.home, model=state.model, recover=True) as runtime:
        console.print(f"frontdesk on http://{host}:{port} (home {runtime.home}; Ctrl-C to stop)")
        uvicorn.run(create_app(runtime), host=host, port=port, log_level="info")
