"""A two-agent conversation for durability tests, importable by child processes.

``Desk`` routes seat requests to ``Seats``; ``Seats`` books a seat with a tool that writes the
context and records each external effect in ``$CONVFLOW_DIR/effects.log``; anything else goes
back to ``Desk``. ``$CRASH_AT=in_tool`` parks the process inside the tool for a SIGKILL (see
``parking``).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from agents import Agent, RunContextWrapper
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from pydantic import BaseModel

from frontdesk import AgentRuntime, StaleConversation, current_tool_call, tool
from parking import park, write_marker


class SeatContext(BaseModel):
    seat: str | None = None
    changes: int = 0


def _log(name: str, line: str) -> None:
    directory = os.environ.get("CONVFLOW_DIR")
    if directory:
        with open(Path(directory) / name, "a") as f:
            f.write(line + "\n")


@tool
def set_seat(wrapper: RunContextWrapper[SeatContext], seat: str) -> str:
    """Book a seat."""
    _log("effects.log", f"{current_tool_call().idempotency_key} {seat}")
    wrapper.context.seat = seat
    wrapper.context.changes += 1
    if os.environ.get("CRASH_AT") == "in_tool":
        write_marker(Path(os.environ["CONVFLOW_DIR"], "parked"), "in_tool")
        park()
    return f"Seat {seat} booked"


def _last_user(items: list[dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("role") == "user":
            content = item.get("content")
            return content if isinstance(content, str) else str(content)
    return ""


def decide(call: Any) -> Any:
    items = [i if isinstance(i, dict) else i.model_dump() for i in call.input]
    text = _last_user(items).lower()
    last = items[-1] if items else {}
    handoffs = {h.agent_name: h.tool_name for h in call.handoffs}
    if last.get("type") == "function_call_output":
        if "Seats" in handoffs or (
            "Desk" in handoffs and "seat" not in text and not re.search(r"\b\d+[a-f]\b", text)
        ):
            pass
        if str(last.get("output", "")).startswith("Seat "):
            return [assistant_message(f"Done: {last['output']}.")]
    if "Seats" in handoffs:  # we are Desk
        if "seat" in text or re.search(r"\b\d+[a-f]\b", text):
            if last.get("type") == "function_call_output":
                return [assistant_message("Let me think.")]
            return [function_call(handoffs["Seats"], {}, call_id=f"h-{len(items)}")]
        return [assistant_message(f"Desk here, you said: {text}")]
    seat = re.search(r"\b(\d+[a-f])\b", text)
    if seat:
        return [
            function_call("set_seat", {"seat": seat.group(1).upper()}, call_id=f"s-{len(items)}")
        ]
    if "seat" in text:
        return [assistant_message("Which seat would you like?")]
    return [function_call(handoffs["Desk"], {}, call_id=f"d-{len(items)}")]


def _model() -> ScriptedModel:
    return ScriptedModel([ModelStep.respond(decide) for _ in range(10_000)])


seats = Agent[SeatContext](name="Seats", model=_model(), tools=[set_seat])
desk = Agent[SeatContext](name="Desk", model=_model(), handoffs=[seats])
seats.handoffs.append(desk)


def main() -> None:
    """``python -m convflow HOME CONV_ID MESSAGE [CHAT_LENGTH]``: send one message."""
    import convflow

    home, conversation_id, message = sys.argv[1:4]
    chat_length = int(sys.argv[4]) if len(sys.argv) > 4 else None
    with AgentRuntime(home, recover=False) as runtime:
        conv = runtime.conversation(
            conversation_id, agent=convflow.desk, context=convflow.SeatContext()
        )
        try:
            for line in conv.send(message, chat_length):
                print(line)
        except StaleConversation as exc:
            print(f"STALE {len(exc.history)}")


if __name__ == "__main__":
    main()
