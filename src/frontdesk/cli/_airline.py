"""``frontdesk chat airline``: talk to the airline agents in a durable conversation.

The conversation lives in the store, not in this process: the history is printed again when
the same ``--conversation-id`` is reopened (after a restart, or from another terminal), and a
message sent from elsewhere in the meantime is shown before this client may send again.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Annotated

import typer

from ..conversations import Conversation
from ..errors import FrontdeskError, InvalidInput, StaleConversation
from ..models._select import MODEL_ENV, RULES
from ._state import open_runtime, state

PROMPT = "Enter your message: "
STALE = "** Stale conversation. Reloading..."

chat = typer.Typer(
    help="Chat with an app's agents in a durable conversation.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the ``chat`` commands."""
    app.add_typer(chat, name="chat")


def chat_model(option: str | None) -> str | None:
    """The model to chat on: ``--model``, the global ``--model``, ``$FRONTDESK_MODEL``, else
    the offline rules when no OpenAI key (or compatible server) is configured."""
    chosen = option or state.model or os.environ.get(MODEL_ENV)
    if chosen:
        return chosen
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return None
    return RULES


@contextmanager
def _interrupts_for_main_thread() -> Iterator[None]:
    """Threads started in the block never take Ctrl-C, so it always interrupts the main
    thread's read of the next message (a signal taken by another thread would not)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _show(lines: Sequence[str]) -> None:
    for line in lines:
        print(line, flush=True)


class ChatClient:
    """A terminal client of one conversation: it remembers how many lines it has shown."""

    def __init__(self, conversation: Conversation) -> None:
        self.conversation = conversation
        self.seen: list[str] = []

    def start(self) -> None:
        """Print the conversation so far."""
        self.seen = self.conversation.history()
        _show(self.seen)

    def send(self, message: str) -> None:
        """Send one message and print what the agents did, or why it was not sent."""
        try:
            new_lines = self.conversation.send(message, len(self.seen))
        except StaleConversation as stale:
            print(STALE, flush=True)
            current = stale.history if stale.history is not None else self.conversation.history()
            _show(current[len(self.seen) :])
            self.seen = list(current)
            return
        except InvalidInput as refused:
            print(f"** Message not sent: {refused}", flush=True)
            return
        except FrontdeskError as failed:
            print(f"** {failed}", flush=True)
            self.seen = self.conversation.history()
            return
        self.seen.extend(new_lines)
        # The first line echoes the user's message, which is already on the screen.
        _show(new_lines[1:])

    def loop(self, read: Callable[[str], str] = input) -> None:
        """Prompt and send until end of input or Ctrl-C."""
        self.start()
        try:
            while True:
                try:
                    message = read(PROMPT)
                except EOFError:
                    break
                self.send(message)
        except KeyboardInterrupt:
            pass
        print(flush=True)


@chat.command("airline")
def airline(
    conversation_id: Annotated[
        str, typer.Option("--conversation-id", help="The conversation to start or continue.")
    ],
    model: Annotated[
        str | None,
        typer.Option(help="'rules' for the offline baseline, or a model name."),
    ] = None,
    memory: Annotated[
        int | None,
        typer.Option(
            "--memory",
            min=1,
            help="Send the agents only the last N turns (kept with the conversation).",
        ),
    ] = None,
    summarize: Annotated[
        bool,
        typer.Option(
            "--summarize", help="With --memory: also send a summary of the turns before them."
        ),
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            help="'local' (the embedded engine) or 'temporal' (a Temporal worker answers)."
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            help="With --engine temporal: the server's HOST:PORT "
            "(default: $FRONTDESK_TEMPORAL_ADDRESS, else localhost:7233)."
        ),
    ] = None,
    namespace: Annotated[
        str, typer.Option(help="With --engine temporal: the Temporal namespace.")
    ] = "default",
) -> None:
    """Chat with the airline's triage, FAQ and seat booking agents."""
    from ..apps.airline import AirlineAgentContext, triage_agent
    from ..engine._memory import Memory

    if engine == "temporal":
        for given, name in ((model, "--model"), (memory, "--memory"), (summarize, "--summarize")):
            if given:
                raise typer.BadParameter(
                    "the Temporal worker chooses the model and what the agents see; "
                    f"{name} applies to --engine local",
                    param_hint=name,
                )
        _chat_on_temporal(conversation_id, address, namespace)
        return
    if engine != "local":
        raise typer.BadParameter(
            f"unknown engine {engine!r}: use 'local' or 'temporal'", param_hint="--engine"
        )
    if summarize and memory is None:
        raise typer.BadParameter("--summarize needs --memory N", param_hint="--summarize")
    policy = Memory(memory, summarize=summarize) if memory is not None else None
    try:
        with ExitStack() as stack:
            with _interrupts_for_main_thread():
                runtime = stack.enter_context(open_runtime(model=chat_model(model)))
            conversation = runtime.conversation(
                conversation_id,
                agent=triage_agent,
                context=AirlineAgentContext(),
                memory=policy,
            )
            ChatClient(conversation).loop()
    except KeyboardInterrupt:
        # Ctrl-C while the conversation was opening or the runtime closing: nothing to undo.
        print(flush=True)


def _chat_on_temporal(conversation_id: str, address: str | None, namespace: str) -> None:
    """The same client, on ``CustomerServiceWorkflow`` (``frontdesk worker --engine temporal``)."""
    from ..engine.temporal._chat import TemporalConversation
    from ..engine.temporal._client import default_address

    try:
        from ..apps.airline.workflow import (
            TASK_QUEUE,
            CustomerServiceWorkflow,
            ProcessUserMessageInput,
        )
        from ..engine.temporal._plugin import frontdesk_plugin

        with _interrupts_for_main_thread():
            conversation = TemporalConversation(
                conversation_id,
                workflow=CustomerServiceWorkflow.__name__,
                message_type=ProcessUserMessageInput,
                task_queue=TASK_QUEUE,
                address=address or default_address(),
                namespace=namespace,
                plugins=[frontdesk_plugin()],
            )
        with conversation:
            conversation.open()
            ChatClient(conversation).loop()  # type: ignore[arg-type]
    except KeyboardInterrupt:
        print(flush=True)
