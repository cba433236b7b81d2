"""convflow's two agents for memory tests, importable by child processes.

``Desk`` and ``Seats`` decide as in :mod:`convflow` (and book seats with its tool, which parks
on ``$CRASH_AT=in_tool``), but their call ids come from a digest of the whole model input, so
they stay unique when a memory window sends inputs of the same length again. Every model call
appends its input to ``$CONVFLOW_DIR/inputs.jsonl``. ``summariser`` writes a deterministic
summary (the customer messages it was shown, after the summary so far) and appends each call
to ``$CONVFLOW_DIR/summaries.log``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from agents import Agent
from agents.testing import ModelStep, ScriptedModel, assistant_message
from openai.types.responses import ResponseFunctionToolCall

import convflow
from frontdesk import AgentRuntime, StaleConversation


def plain(items: Any) -> list[dict[str, Any]]:
    """Model input items as plain dicts."""
    if isinstance(items, str):
        return [{"content": items, "role": "user"}]
    return [i if isinstance(i, dict) else i.model_dump(exclude_unset=True) for i in items]


def _append(name: str, line: str) -> None:
    directory = os.environ.get("CONVFLOW_DIR")
    if directory:
        with open(Path(directory) / name, "a") as f:
            f.write(line + "\n")


def _decide(call: Any) -> Any:
    items = plain(call.input)
    _append("inputs.jsonl", json.dumps(items))
    digest = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()[:12]
    out = []
    for item in convflow.decide(call):
        if isinstance(item, ResponseFunctionToolCall):
            unique = f"{item.call_id}-{digest}"
            item = item.model_copy(update={"call_id": unique, "id": unique})
        out.append(item)
    return out


def _summarise(call: Any) -> Any:
    text = str(plain(call.input)[-1]["content"])
    _append("summaries.log", text.replace("\n", " | "))
    so_far = text.split("\n\n", 1)[0].removeprefix("Summary so far:\n")
    said = re.findall(r"^User: (.*)$", text, re.M)
    earlier = "" if so_far == "(nothing yet)" else so_far + "; "
    return [assistant_message(f"{earlier}customer said {', '.join(said)}"[-400:])]


def _model(decide: Any) -> ScriptedModel:
    return ScriptedModel([ModelStep.respond(decide) for _ in range(10_000)])


seats = Agent[convflow.SeatContext](name="Seats", model=_model(_decide), tools=[convflow.set_seat])
desk = Agent[convflow.SeatContext](name="Desk", model=_model(_decide), handoffs=[seats])
seats.handoffs.append(desk)
summariser = Agent(name="Summariser", model=_model(_summarise))


def main() -> None:
    """``python -m memflow HOME CONV_ID MESSAGE``: send one message under the stored policy."""
    import memflow

    home, conversation_id, message = sys.argv[1:4]
    with AgentRuntime(home, recover=False) as runtime:
        runtime.register(memflow.summariser)
        conv = runtime.conversation(
            conversation_id, agent=memflow.desk, context=convflow.SeatContext()
        )
        try:
            for line in conv.send(message):
                print(line)
        except StaleConversation as exc:
            print(f"STALE {len(exc.history)}")


if __name__ == "__main__":
    main()
