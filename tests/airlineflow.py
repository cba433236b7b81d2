"""The airline agents for crash tests, importable by child processes.

A fresh airline graph from ``init_agents()`` whose agents decide by their offline rules. Every
real execution of ``update_seat`` is logged to ``$AIRLINEFLOW_DIR/effects.log``. With
``$AIRLINEFLOW_PARK`` set, the process parks on the model call that follows a finished
``update_seat`` (the seat is changed and the tool's result journaled, the turn not yet
complete) and writes ``$AIRLINEFLOW_DIR/parked``, so a test can SIGKILL it there (see
``parking``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from agents import FunctionTool

from frontdesk import AgentRuntime, StaleConversation
from frontdesk.apps.airline import AirlineAgentContext, init_agents
from frontdesk.models.rules import RulesModel
from parking import park, write_marker


def _flow_dir() -> Path | None:
    directory = os.environ.get("AIRLINEFLOW_DIR")
    return Path(directory) if directory else None


class ParkingRulesModel(RulesModel):
    """The agent's rules model, parking after ``update_seat`` when asked to."""

    async def get_response(
        self, system_instructions: Any, input: Any, model_settings: Any, tools: Any,
        output_schema: Any, handoffs: Any, tracing: Any, **kwargs: Any,
    ) -> Any:  # fmt: skip
        directory = _flow_dir()
        seat_changed = self.conversation(input, tools, handoffs).last_call("update_seat", "turn")
        if directory and os.environ.get("AIRLINEFLOW_PARK") and seat_changed:
            write_marker(directory / "parked", self.agent_name)
            await asyncio.to_thread(park)
        return await super().get_response(
            system_instructions, input, model_settings, tools, output_schema, handoffs, tracing,
            **kwargs,
        )  # fmt: skip


def _log_effect(line: str) -> None:
    directory = _flow_dir()
    if directory:
        with open(directory / "effects.log", "a") as log:
            log.write(line + "\n")


def _logged(tool: FunctionTool) -> FunctionTool:
    original = tool.on_invoke_tool

    async def invoke(ctx: Any, args_json: str) -> Any:
        _log_effect(f"{tool.name} {args_json}")
        return await original(ctx, args_json)

    return dataclasses.replace(tool, on_invoke_tool=invoke)


triage, _agents = init_agents()
for _agent in _agents.values():
    _agent.model = ParkingRulesModel(RulesModel.for_agent(_agent).rules, agent_name=_agent.name)
    _agent.tools = [_logged(t) if isinstance(t, FunctionTool) else t for t in _agent.tools]


def main() -> None:
    """``python -m airlineflow HOME CONV_ID MESSAGE``: send one message, print the new lines."""
    import airlineflow

    home, conversation_id, message = sys.argv[1:4]
    with AgentRuntime(home, recover=False) as runtime:
        conv = runtime.conversation(
            conversation_id, agent=airlineflow.triage, context=AirlineAgentContext()
        )
        try:
            for line in conv.send(message, len(conv.history())):
                print(line)
        except StaleConversation as exc:
            print(f"STALE {len(exc.history or [])}")


if __name__ == "__main__":
    main()
