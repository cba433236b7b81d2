"""Record the history of one airline conversation on Temporal, for the replay test.

    .venv/bin/python tests/record_airline_history.py

Runs ``CustomerServiceWorkflow`` on a dev server of its own with the offline rules: a
baggage question, a seat change (the handoff hook, then ``update_seat`` as an activity) and
a wifi question; then writes the workflow's history to ``tests/data/airline_history.json``.
Record it again only when the workflow's commands change on purpose, and say so in the commit.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path

from frontdesk.apps.airline.workflow import (
    AGENTS,
    TASK_QUEUE,
    CustomerServiceWorkflow,
    ProcessUserMessageInput,
)
from frontdesk.engine.temporal._client import connect
from frontdesk.engine.temporal._plugin import frontdesk_plugin, frontdesk_worker
from temporalserver import dev_server

OUTPUT = Path(__file__).parent / "data" / "airline_history.json"
WORKFLOW_ID = "recorded-airline-conversation"
MESSAGES = (
    "What's the baggage allowance?",
    "I'd like to change my seat",
    "LL0EZ6",
    "14C",
    "Is there wifi?",
)


async def record(address: str, home: str) -> str:
    client = await connect(address, plugins=[frontdesk_plugin(AGENTS, model="rules")])
    worker = frontdesk_worker(
        client,
        AGENTS,
        task_queue=TASK_QUEUE,
        workflows=[CustomerServiceWorkflow],
        home=home,
        model="rules",
    )
    async with worker:
        handle = await client.start_workflow(
            CustomerServiceWorkflow.run, id=WORKFLOW_ID, task_queue=TASK_QUEUE
        )
        lines: list[str] = []
        for message in MESSAGES:
            lines += await handle.execute_update(
                CustomerServiceWorkflow.process_user_message,
                ProcessUserMessageInput(user_input=message, chat_length=len(lines)),
            )
        history = await handle.fetch_history()
    return history.to_json()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="frontdesk-record-") as home:
        os.environ["FRONTDESK_HOME"] = home
        with dev_server() as server:
            text = asyncio.run(record(server.address, home))
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(json.loads(text), indent=1) + "\n")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
