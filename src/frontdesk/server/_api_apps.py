"""The JSON API of the apps' records: conversations, disputes and escalations.

Same rules as :mod:`._api`: the token or a session on every route, the runtime's public API
only. Conversations answer 409 with the current history when the sender's view is stale.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from .._prices import add_costs
from ..conversations import Conversation
from ..errors import InvalidInput
from ._agentview import AgentView
from ._api import Body, State
from ._errors import ERROR_RESPONSES, ApiError, NotFound
from ._present import iso, preview
from ._state import ConsoleState, api_user, known_query

router = APIRouter(
    prefix="/api", responses=ERROR_RESPONSES, dependencies=[Depends(api_user), Depends(known_query)]
)


# -- conversations -----------------------------------------------------------------------------------


class ConversationSummary(BaseModel):
    """A conversation as listed."""

    conversation_id: str
    app: str | None
    current_agent: str
    turns: int
    lines: int
    pending_run: str | None
    created_at: str | None
    updated_at: str | None
    usage: dict[str, int]
    cost: float | None


class ConversationPage(BaseModel):
    """A page of conversations, most recently active first."""

    items: list[ConversationSummary]
    next_cursor: str | None


class ConversationDetail(BaseModel):
    """A conversation: its history, current agent, context and agent view."""

    conversation_id: str
    current_agent: str
    turns: int
    history: list[str]
    context: Any = None
    last_run: str | None
    agent_view: dict[str, Any]


class NewConversation(Body):
    """Start a conversation with an app's agents."""

    app: str = Field(max_length=100)
    conversation_id: str | None = Field(default=None, min_length=1, max_length=200)


class SendMessage(Body):
    """A message, and how many history lines the sender has seen."""

    user_input: str = Field(max_length=100_000)
    chat_length: int = Field(ge=0, le=2**62)


class SentMessage(BaseModel):
    """The lines the message added (the user's line first)."""

    lines: list[str]
    history_len: int
    current_agent: str


def conversation_summary(state: ConsoleState, row: Any) -> dict[str, Any]:
    """A listed conversation, with its cost estimated per model."""
    from ..engine._agents import iter_graph
    from ..store import app_of
    from ._agentview import root_agent

    costs: list[float | None] = []
    own_models: dict[str, str] = {}
    if any(key.startswith("agent:") for key in row.models):
        root = root_agent(state.runtime, row.agent_ref)
        for agent in iter_graph(root) if root is not None else []:
            if isinstance(agent.model, str):
                own_models.setdefault(agent.name, agent.model)
    for key, (input_tokens, output_tokens) in row.models.items():
        model = own_models.get(key[6:]) if key.startswith("agent:") else key
        costs.append(state.price_table.cost(model, input_tokens, output_tokens))
    return {
        "conversation_id": row.conversation_id,
        "app": app_of(row.agent_ref),
        "current_agent": row.current_agent,
        "turns": row.turns,
        "lines": row.history_len,
        "pending_run": row.pending_run,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "usage": {
            "requests": row.requests,
            "input_tokens": row.input_tokens,
            "output_tokens": row.output_tokens,
            "total_tokens": row.total_tokens,
        },
        "cost": add_costs(costs) if costs else 0.0,
    }


def open_conversation(state: ConsoleState, conversation_id: str) -> Conversation:
    """An existing conversation; 404 if there is none."""
    if not conversation_id.strip() or len(conversation_id) > 200:
        raise NotFound(f"no conversation {conversation_id[:200]!r}")
    try:
        return state.runtime.conversation(conversation_id)
    except NotFound:
        raise
    except InvalidInput as exc:
        if "does not exist" in str(exc):
            raise NotFound(f"no conversation {conversation_id!r}") from None
        raise


VIEW_TURNS = 20
"""How many recent turns a conversation's agent view traces."""


def conversation_detail(state: ConsoleState, conversation: Conversation) -> dict[str, Any]:
    """A conversation with its history, context and agent view."""
    return conversation_view(state, conversation)[0]


def conversation_view(
    state: ConsoleState, conversation: Conversation
) -> tuple[dict[str, Any], AgentView]:
    """A conversation and its agent view: the graph from its agents, the path of its recent
    turns (up to :data:`VIEW_TURNS`) highlighted, its current agent marked."""
    from ._agentview import build_view, root_agent, run_path

    recent = state.runtime.runs_page(
        conversation_id=conversation.conversation_id, limit=VIEW_TURNS
    ).items
    last = recent[0] if recent else None
    current = conversation.current_agent
    path: list[str] = []
    taken: list[tuple[str, str]] = []
    tools: dict[str, set[str]] = {}
    for turn in reversed(recent):  # oldest first
        turn_path, turn_taken, turn_tools = run_path(turn.events, turn.agent)
        for agent in turn_path:
            if not path or path[-1] != agent:
                path.append(agent)
        taken += turn_taken
        for agent, called in turn_tools.items():
            tools.setdefault(agent, set()).update(called)
    root = root_agent(state.runtime, last.agent_ref) if last is not None else None
    if not path:
        path = [current]
    view = build_view(root, path, taken, tools, current)
    context = conversation.context
    detail = {
        "conversation_id": conversation.conversation_id,
        "current_agent": current,
        "turns": conversation.turns,
        "history": conversation.history(),
        "context": context.model_dump(mode="json") if hasattr(context, "model_dump") else context,
        "last_run": last.execution_id if last is not None else None,
        "agent_view": view.to_dict(),
    }
    return detail, view


@router.get("/conversations", response_model=ConversationPage)
def list_conversations(
    state: State,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Conversations with their turn counts, tokens and estimated cost."""
    page = state.runtime.conversations(limit=limit, cursor=cursor or None)
    return {
        "items": [conversation_summary(state, row) for row in page.items],
        "next_cursor": page.next_cursor,
    }


@router.post("/conversations", response_model=ConversationDetail, status_code=201)
def create_conversation(state: State, body: NewConversation) -> dict[str, Any]:
    """Start a conversation with an app's agents (or reopen it if the id exists)."""
    import secrets

    app = state.apps.get(body.app)
    if app is None or not app.chat:
        chat = ", ".join(name for name, a in state.apps.items() if a.chat)
        raise InvalidInput(f"app {body.app!r} has no conversations; one of: {chat}")
    conversation_id = body.conversation_id or f"{app.name}-{secrets.token_hex(4)}"
    conversation = state.runtime.conversation(
        conversation_id, agent=app.agent(), context=app.context()
    )
    return conversation_detail(state, conversation)


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail)
def get_conversation(state: State, conversation_id: str) -> dict[str, Any]:
    """A conversation's history, current agent, context and agent view."""
    return conversation_detail(state, open_conversation(state, conversation_id))


@router.post("/conversations/{conversation_id}/messages", response_model=SentMessage)
def send_message(state: State, conversation_id: str, body: SendMessage) -> dict[str, Any]:
    """Send a message; 409 with the current ``history`` when ``chat_length`` is stale."""
    conversation = open_conversation(state, conversation_id)
    lines = conversation.send(body.user_input, chat_length=body.chat_length)
    return {
        "lines": lines,
        "history_len": body.chat_length + len(lines),
        "current_agent": conversation.current_agent,
    }


# -- disputes and escalations --------------------------------------------------------------------------


class DisputeItem(BaseModel):
    """A Stripe dispute, its deadline, decision, evidence and run."""

    dispute_id: str
    payment_intent: str | None
    amount: int
    amount_text: str
    currency: str
    reason: str
    status: str
    due_by: str | None
    hours_left: float | None
    due_soon: bool
    handling: str
    evidence: str
    submission_approval: str | None
    execution_id: str | None
    run_status: str | None
    handled_by: str | None


class DisputeList(BaseModel):
    """Disputes, open ones due soonest first."""

    items: list[DisputeItem]


class EscalationList(BaseModel):
    """The support desk's human queue, oldest first."""

    items: list[dict[str, Any]]


def dispute_items(state: ConsoleState, limit: int) -> list[dict[str, Any]]:
    """Disputes from Stripe joined with their runs; :class:`ApiError` 503 if Stripe fails."""
    import stripe

    from ..apps.disputes import StripeSettings, stripe_client
    from ..apps.disputes._stripe import format_amount
    from ..apps.disputes.reporting import DUE_SOON_HOURS, collect_disputes

    try:
        rows = collect_disputes(state.runtime, stripe_client(), limit=limit)
    except stripe.StripeError as exc:
        base = StripeSettings.from_env().api_base
        raise ApiError(503, f"Stripe at {base} cannot be read: {exc.user_message or exc}") from None
    rows.sort(key=lambda d: (not d.is_open, d.due_by or 0))
    return [
        {
            "dispute_id": d.dispute_id,
            "payment_intent": d.payment_intent,
            "amount": d.amount,
            "amount_text": format_amount(d.amount, d.currency),
            "currency": d.currency,
            "reason": d.reason,
            "status": d.status,
            "due_by": iso(d.due_by) if d.due_by is not None else None,
            "hours_left": d.hours_left(),
            "due_soon": d.due_within(DUE_SOON_HOURS),
            "handling": d.handling,
            "evidence": d.evidence,
            "submission_approval": d.submission.approval_id if d.submission else None,
            "execution_id": d.execution_id,
            "run_status": d.run_status,
            "handled_by": d.handled_by,
        }
        for d in rows
    ]


@router.get("/disputes", response_model=DisputeList)
def list_disputes(state: State, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    """Stripe disputes with their runs; 503 when Stripe (or its sandbox) cannot be reached."""
    return {"items": dispute_items(state, limit)}


@router.get("/escalations", response_model=EscalationList)
def list_escalations(state: State) -> dict[str, Any]:
    """Tickets the support desk escalated to a human."""
    from ..apps.support import list_escalations as escalations

    items = []
    for row in escalations(runtime=state.runtime):
        item = dict(row)
        if isinstance(item.get("created_at"), int | float):
            item["created_at"] = iso(item["created_at"])
        item["reason_preview"] = preview(item.get("reason"), 200)
        items.append(item)
    return {"items": items}
