"""A Temporal worker for the airline app, in a child process of a test.

    python temporalflow.py ADDRESS READY_MARKER [PARK_MARKER]

It serves ``CustomerServiceWorkflow`` with frontdesk's activities on the offline rules,
writes READY_MARKER once it polls, and runs until it is killed. With PARK_MARKER, the model
call that follows a finished ``update_seat`` (the turn's tool ran, its answer is not written
yet) writes PARK_MARKER and parks the worker there: its event loop stops, so it stops
heartbeating, as a worker that died would. Model calls heartbeat every second here, so the
server hands a parked call to another worker within seconds.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

from agents import Model, ModelProvider
from agents.items import ModelResponse

from frontdesk.apps.airline.workflow import AGENTS, TEMPORAL_APP
from frontdesk.engine.temporal._activities import WorkerAgents
from frontdesk.engine.temporal._models import RulesByShape
from frontdesk.engine.temporal._plugin import model_params
from frontdesk.engine.temporal._serve import serve
from parking import park, write_marker


def _after_seat_update(items: Any) -> bool:
    if not isinstance(items, list) or not items:
        return False
    last = items[-1]
    if not isinstance(last, dict) or last.get("type") != "function_call_output":
        return False
    return any(
        isinstance(item, dict)
        and item.get("type") == "function_call"
        and item.get("name") == "update_seat"
        and item.get("call_id") == last.get("call_id")
        for item in items
    )


class ParkingModel(RulesByShape):
    """The airline's rules, parking the worker once ``update_seat`` has run."""

    def __init__(self, marker: str) -> None:
        super().__init__(WorkerAgents(AGENTS))
        self.marker = marker

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        if _after_seat_update(input):
            write_marker(self.marker, "parked")
            park()
        return await super().get_response(system_instructions, input, *args, **kwargs)


class ParkingProvider(ModelProvider):
    def __init__(self, marker: str) -> None:
        self.model = ParkingModel(marker)

    def get_model(self, model_name: str | None) -> Model:
        return self.model


def main() -> None:
    address, ready = sys.argv[1], sys.argv[2]
    parked = sys.argv[3] if len(sys.argv) > 3 else None
    serve(
        TEMPORAL_APP,
        address,
        model=None if parked else "rules",
        provider=ParkingProvider(parked) if parked else None,
        params=model_params(heartbeat_timeout=timedelta(seconds=1)),
        on_ready=lambda: write_marker(ready, "ready"),
    )


if __name__ == "__main__":
    main()
