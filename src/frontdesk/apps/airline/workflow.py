"""The airline conversation as a Temporal workflow: ``CustomerServiceWorkflow``.

One workflow per conversation (its id is the conversation id), on the task queue
``openai-agents-task-queue``. Each message is an update, ``process_user_message``, whose
validator refuses empty and over-long input and a stale ``chat_length`` before anything is
recorded; ``get_chat_history`` is a query. The workflow keeps the current agent's name, the
context and the input items as data, and finds the agents again by name in the graph
:func:`~frontdesk.apps.airline.init_agents` builds.

The agents run unmodified: their model calls, tools and handoff hooks are activities
(:mod:`frontdesk.engine.temporal`), and a model call carries the conversation's items by
reference, so the history a turn adds does not grow with the conversation. The workflow
continues as new when Temporal suggests it, or after ``max_updates_per_run`` messages (below
the server's limit on updates per execution), once every handler has finished.

Run a worker with ``frontdesk worker --engine temporal --app airline`` and talk to it with
``frontdesk chat airline --engine temporal --conversation-id X``.
"""

from __future__ import annotations

from typing import Any

try:
    from temporalio import workflow
    from temporalio.exceptions import ApplicationError
except ImportError as _exc:  # the temporal extra is missing
    from frontdesk.engine.temporal._extra import missing_extra

    raise missing_extra(_exc) from _exc

with workflow.unsafe.imports_passed_through():
    from agents import RunConfig, Runner, trace
    from agents.run import get_default_agent_runner
    from pydantic import BaseModel, Field, ValidationError

    from frontdesk.engine._context import dump_context, restore_into
    from frontdesk.engine._conversation import history_lines
    from frontdesk.engine.temporal._plugin import model_params
    from frontdesk.engine.temporal._serve import TemporalApp
    from frontdesk.engine.temporal._workflow_agents import ItemChain, WorkflowAgents

    from .agents import AGENTS, init_agents
    from .tools import AirlineAgentContext

TASK_QUEUE = "openai-agents-task-queue"
"""The task queue of the airline workflow (the seed's)."""
MAX_INPUT_CHARS = 1000
"""The longest message the workflow accepts."""
DEFAULT_MAX_UPDATES_PER_RUN = 500
"""Messages one workflow run answers before it continues as new (the server's limit on
updates per execution is 2,000 by default)."""
STALE = "Stale chat history. Please refresh the chat."
"""Why a message sent on an out-of-date view of the conversation is refused."""
TURN_FAILED = "TurnFailed"
"""The ``ApplicationError`` type of a message that could not be answered (nothing kept)."""
SUMMARY_CHARS = 200


class ProcessUserMessageInput(BaseModel):
    """One message from the customer."""

    user_input: str
    """What the customer wrote."""
    chat_length: int
    """How many history lines the sender has seen; a stale view is refused."""


class CustomerServiceWorkflowState(BaseModel):
    """A conversation's state as data: what a new run of the workflow starts from."""

    current_agent_name: str | None = None
    """The agent that answers the next message (None: triage)."""
    context: AirlineAgentContext = Field(default_factory=AirlineAgentContext)
    """What the agents know about the customer."""
    printed_history: list[str] = Field(default_factory=list)
    """The conversation's history lines."""
    input_items: list[dict[str, Any]] = Field(default_factory=list)
    """The items the agents see (``result.to_input_list()`` of the last turn)."""
    items_ref: str | None = None
    """The reference under which the workers' store holds the first ``items_ref_len``
    input items, so a new run need not send them again."""
    items_ref_len: int = 0
    """How many input items ``items_ref`` covers."""
    max_updates_per_run: int = Field(default=DEFAULT_MAX_UPDATES_PER_RUN, ge=1, le=1900)
    """Messages one run answers before it continues as new."""


@workflow.defn
class CustomerServiceWorkflow:
    """The airline's triage, FAQ and seat booking agents in one durable conversation."""

    @workflow.init
    def __init__(self, state: CustomerServiceWorkflowState | None = None) -> None:
        state = state or CustomerServiceWorkflowState()
        self.run_config = RunConfig()
        starting_agent, _agents = init_agents()
        params = getattr(get_default_agent_runner(), "model_params", None) or model_params()
        self.agents = WorkflowAgents(
            [starting_agent],
            model_params=params,
            chain=ItemChain(state.input_items[: state.items_ref_len], state.items_ref),
        )
        self.current_agent_name = state.current_agent_name or starting_agent.name
        self.agents.agent(self.current_agent_name)  # an unknown name fails here, not later
        self.context = state.context
        self.printed_history = list(state.printed_history)
        self.input_items: list[Any] = list(state.input_items)
        self.max_updates_per_run = state.max_updates_per_run
        self.updates = 0
        """Messages this run has accepted."""
        self.answering = False

    @workflow.run
    async def run(self, state: CustomerServiceWorkflowState | None = None) -> None:
        """Answer messages; continue as new when due, after every handler has finished."""
        await workflow.wait_condition(self._continue_as_new_due)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self.state())

    def _continue_as_new_due(self) -> bool:
        if self.updates >= self.max_updates_per_run:
            return True
        return workflow.info().is_continue_as_new_suggested()

    def state(self) -> CustomerServiceWorkflowState:
        """The conversation as data."""
        # Only what the store holds of these very items (a failed turn's items may be there).
        length, ref = self.agents.chain.stored_prefix(self.input_items)
        return CustomerServiceWorkflowState(
            current_agent_name=self.current_agent_name,
            context=self.context,
            printed_history=self.printed_history,
            input_items=self.input_items,
            items_ref=ref,
            items_ref_len=length if ref is not None else 0,
            max_updates_per_run=self.max_updates_per_run,
        )

    @workflow.query
    def get_chat_history(self) -> list[str]:
        """Every history line, oldest first."""
        return self.printed_history

    @workflow.update
    async def process_user_message(self, input: ProcessUserMessageInput) -> list[str]:
        """Answer one message; the new history lines, the ``User:`` line first."""
        input = _message(input)
        self.updates += 1
        self.answering = True
        length = len(self.printed_history)
        self.printed_history.append(f"User: {input.user_input}")
        before = (self.current_agent_name, list(self.input_items), dump_context(self.context))
        try:
            with trace("Customer service", group_id=workflow.info().workflow_id):
                self.input_items.append({"content": input.user_input, "role": "user"})
                result = await Runner.run(
                    self.agents.agent(self.current_agent_name),
                    self.input_items,
                    context=self.context,
                    run_config=self.run_config,
                )
                self.printed_history.extend(history_lines(result))
                self.input_items = result.to_input_list()
                self.current_agent_name = result.last_agent.name
        except Exception as exc:
            # Nothing of a failed turn is kept: the customer may send the message again.
            del self.printed_history[length:]
            self.current_agent_name, self.input_items, (context_type, context_json) = before
            restore_into(self.context, context_type, context_json)
            raise ApplicationError(
                f"the message could not be answered: {exc}", type=TURN_FAILED, non_retryable=True
            ) from exc
        finally:
            self.answering = False
        workflow.set_current_details(self._summary())
        return self.printed_history[length:]

    @process_user_message.validator
    def validate_user_message(self, input: ProcessUserMessageInput) -> None:
        """Refuse empty or over-long input, and a message sent on a stale history."""
        input = _message(input)
        if not input.user_input.strip():
            raise ValueError("Cannot process empty user input.")
        if len(input.user_input) > MAX_INPUT_CHARS:
            raise ValueError(f"User input exceeds maximum length of {MAX_INPUT_CHARS} characters.")
        if self.answering or input.chat_length != len(self.printed_history):
            raise ValueError(STALE)

    def _summary(self) -> str:
        """What the Temporal UI shows: the current agent and the last exchange."""
        last_user = next(
            (line for line in reversed(self.printed_history) if line.startswith("User: ")), ""
        )
        last_reply = self.printed_history[-1] if self.printed_history else ""
        lines = [f"Current agent: {self.current_agent_name}", f"Last message: {last_user}"]
        if last_reply and last_reply != last_user:
            lines.append(f"Last reply: {last_reply}")
        return "\n".join(_clip(line) for line in lines)


def _message(value: Any) -> ProcessUserMessageInput:
    """The update's input as a whole message; ``ValueError`` naming what is missing or wrong.

    The plugin's converter builds what it can of an input that does not validate, so a
    message missing a field arrives here incomplete, and is refused with the reason.
    """
    if isinstance(value, ProcessUserMessageInput) and set(
        ProcessUserMessageInput.model_fields
    ) <= set(value.__dict__):
        return value
    data = dict(value.__dict__) if isinstance(value, BaseModel) else value
    try:
        return ProcessUserMessageInput.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'message'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ValueError(f"Invalid message: {problems}.") from None


def _clip(text: str) -> str:
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 3] + "..."


TEMPORAL_APP = TemporalApp(
    name="airline", workflows=[CustomerServiceWorkflow], agents=AGENTS, task_queue=TASK_QUEUE
)
"""What ``frontdesk worker --engine temporal --app airline`` runs."""


__all__ = [
    "AGENTS",
    "DEFAULT_MAX_UPDATES_PER_RUN",
    "MAX_INPUT_CHARS",
    "STALE",
    "TASK_QUEUE",
    "TEMPORAL_APP",
    "CustomerServiceWorkflow",
    "CustomerServiceWorkflowState",
    "ProcessUserMessageInput",
]
