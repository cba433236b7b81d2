"""Rule types and the decision procedure of the rules model."""

from __future__ import annotations

import logging
import re
import string
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._rules_conversation import Conversation, Scope, TextScope, lookup_path, word_pattern

logger = logging.getLogger(__name__)

Condition = Callable[[Conversation], bool]
"""A predicate over the conversation, e.g. ``lambda c: c.mentions("refund")``."""

DEFAULT_FALLBACK = (
    "I'm sorry, I'm not able to help with that here. "
    "Could you tell me a bit more about what you need?"
)


class ArgSource(ABC):
    """Where a tool argument comes from. ``resolve`` returns None when the value is unknown."""

    @abstractmethod
    def resolve(self, conversation: Conversation) -> Any:
        """The argument value, or None when it cannot be found yet."""


@dataclass(frozen=True)
class FromMessage(ArgSource):
    """A regex match in user text: group 1 if the pattern has groups, else the whole match."""

    pattern: str
    scope: TextScope = "latest"
    transform: Callable[[str], Any] | None = None
    """Applied to the match, e.g. ``str.upper``."""
    flags: int = re.IGNORECASE

    def resolve(self, conversation: Conversation) -> Any:
        """The (transformed) match, or None."""
        value = conversation.search(self.pattern, self.scope, self.flags)
        if value is None or self.transform is None:
            return value
        return self.transform(value)


@dataclass(frozen=True)
class FromResult(ArgSource):
    """A value from the latest result of ``tool``, at a dotted ``path`` ("" for all of it)."""

    tool: str
    path: str = ""
    scope: Scope = "turn"

    def resolve(self, conversation: Conversation) -> Any:
        """The value at ``path`` in the result, or None."""
        result = conversation.result(self.tool, self.scope)
        return None if result is None else lookup_path(result, self.path)


@dataclass(frozen=True)
class FromJSON(ArgSource):
    """A value at a dotted ``path`` in the latest user message read as JSON."""

    path: str

    def resolve(self, conversation: Conversation) -> Any:
        """The value at ``path``, or None when the message is not JSON or lacks it."""
        data = conversation.json_message()
        return None if data is None else lookup_path(data, self.path)


@dataclass(frozen=True, init=False)
class FirstOf(ArgSource):
    """The first of several sources (or literals) that yields a value."""

    sources: tuple[Any, ...]

    def __init__(self, *sources: Any) -> None:
        object.__setattr__(self, "sources", sources)

    def resolve(self, conversation: Conversation) -> Any:
        """The first value that is not None."""
        for source in self.sources:
            value = resolve_value(source, conversation)
            if value is not None:
                return value
        return None


def resolve_value(spec: Any, conversation: Conversation) -> Any:
    """Resolve an argument spec: an :class:`ArgSource`, a function of the conversation,
    a dict or list of specs, or a literal. None anywhere means "not known yet"."""
    if isinstance(spec, ArgSource):
        return spec.resolve(conversation)
    if callable(spec):
        return spec(conversation)
    if isinstance(spec, Mapping):
        resolved = {key: resolve_value(value, conversation) for key, value in spec.items()}
        return None if any(v is None for v in resolved.values()) else resolved
    if isinstance(spec, list | tuple):
        items = [resolve_value(value, conversation) for value in spec]
        return None if any(v is None for v in items) else items
    return spec


def _holds(when: Condition | None, conversation: Conversation) -> bool:
    return when is None or bool(when(conversation))


@dataclass(frozen=True)
class Route:
    """Hand off to ``target`` (an agent name or handoff tool name) when the latest user
    message hits its keywords or patterns, and ``when`` (if given) holds.

    Consecutive routes form one decision: the route with the most hits wins, ties go to the
    one declared first. A route with only ``when`` counts one hit when it holds. A route never
    fires to an agent already handed to for this user message.
    """

    target: str
    keywords: Sequence[str] = ()
    patterns: Sequence[str] = ()
    when: Condition | None = None

    def score(self, conversation: Conversation) -> int:
        """How strongly this route matches (0: not at all)."""
        if not _holds(self.when, conversation):
            return 0
        if not self.keywords and not self.patterns:
            return 1 if self.when is not None else 0
        text = conversation.last_user
        hits = sum(1 for word in self.keywords if word_pattern(word).search(text))
        return hits + sum(1 for p in self.patterns if re.search(p, text, re.IGNORECASE))

    def tool_name(self, conversation: Conversation) -> str | None:
        """The handoff tool for this route if it may fire now."""
        for agent, tool in conversation.handoff_tools.items():
            if self.target in (agent, tool):
                return None if agent in conversation.handoffs else tool
        return None


@dataclass(frozen=True)
class Call:
    """Call ``tool`` with ``args`` (name -> spec, or a function returning the whole dict).

    Fires when the tool is available, ``when`` holds, every argument resolves, and the same
    call (tool and arguments) was not already made for this user message.
    """

    tool: str
    args: Mapping[str, Any] | Callable[[Conversation], Mapping[str, Any] | None] = field(
        default_factory=dict
    )
    when: Condition | None = None

    def ready_args(self, conversation: Conversation) -> dict[str, Any] | None:
        """The arguments to call with now, or None if this call should not fire."""
        if self.tool not in conversation.tools or not _holds(self.when, conversation):
            return None
        raw = self.args(conversation) if callable(self.args) else self.args
        args = None if raw is None else resolve_value(dict(raw), conversation)
        if args is None or conversation.already_made(self.tool, args):
            return None
        return args


@dataclass(frozen=True, init=False)
class Parallel:
    """Several calls issued together (parallel lookups): every member ready now fires."""

    calls: tuple[Call, ...]
    when: Condition | None

    def __init__(self, *calls: Call, when: Condition | None = None) -> None:
        object.__setattr__(self, "calls", calls)
        object.__setattr__(self, "when", when)


@dataclass(frozen=True)
class Reply:
    """Answer with ``text``: a template or a function of the conversation returning text.

    Templates fill ``{tool.path}`` from the latest result of ``tool`` for this user message
    (format specs work: ``{get_invoice.amount:.2f}``) and ``{message}`` with the latest user
    message. A reply whose placeholders cannot be filled, whose function returns None, or
    that would repeat the previous assistant message verbatim, does not fire.
    """

    text: str | Callable[[Conversation], Any]
    when: Condition | None = None


Step = Route | Call | Parallel | Reply


@dataclass(frozen=True)
class Rules:
    """An agent's decision rules: steps tried in order on every model call, then a fallback."""

    steps: Sequence[Step]
    fallback: str = DEFAULT_FALLBACK


@dataclass(frozen=True)
class Decision:
    """One model decision: tool calls, a handoff, or a final reply."""

    calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    handoff: str | None = None
    """The handoff tool name."""
    reply: Any = None
    """Reply text (or a JSON-able value for agents with structured output)."""
    step: int | None = None
    """Index of the deciding step; None when the fallback answered."""


_FORMATTER = string.Formatter()


def render(template: str, conversation: Conversation) -> str | None:
    """Fill ``{tool.path[:spec]}`` and ``{message}`` placeholders; None if one is unknown."""
    out: list[str] = []
    for literal, name, spec, conversion in _FORMATTER.parse(template):
        out.append(literal)
        if name is None:
            continue
        head, _, path = name.partition(".")
        if head == "message":
            value: Any = conversation.last_user
        else:
            result = conversation.result(head, "turn")
            value = None if result is None else lookup_path(result, path)
        if value is None:
            return None
        value = _FORMATTER.convert_field(value, conversion) if conversion else value
        try:
            out.append(format(value, spec or ""))
        except (TypeError, ValueError):
            return None
    return "".join(out)


def _reply_value(step: Reply, conversation: Conversation) -> Any:
    if not _holds(step.when, conversation):
        return None
    if callable(step.text):
        return step.text(conversation)
    return render(step.text, conversation)


def _repeats(reply: Any, conversation: Conversation) -> bool:
    previous = conversation.previous_assistant
    return isinstance(reply, str) and previous is not None and reply.strip() == previous.strip()


def _route_block(routes: Sequence[Route], conversation: Conversation) -> str | None:
    best_tool, best_score = None, 0
    for route in routes:
        tool = route.tool_name(conversation)
        if tool is None:
            continue
        score = route.score(conversation)
        if score > best_score:
            best_tool, best_score = tool, score
    return best_tool


def _parallel_calls(step: Parallel, conversation: Conversation) -> list[tuple[str, dict[str, Any]]]:
    if not _holds(step.when, conversation):
        return []
    ready: list[tuple[str, dict[str, Any]]] = []
    for call in step.calls:
        args = call.ready_args(conversation)
        if args is not None and (call.tool, args) not in ready:
            ready.append((call.tool, args))
    return ready


def _fires(steps: Sequence[Step], index: int, conversation: Conversation) -> Decision | None:
    """The decision of the step (or route block) starting at ``index``, if it fires."""
    step = steps[index]
    if isinstance(step, Route):
        block = [s for s in steps[index : _block_end(steps, index)] if isinstance(s, Route)]
        tool = _route_block(block, conversation)
        return None if tool is None else Decision(handoff=tool, step=index)
    if isinstance(step, Call):
        args = step.ready_args(conversation)
        return None if args is None else Decision(calls=((step.tool, args),), step=index)
    if isinstance(step, Parallel):
        calls = _parallel_calls(step, conversation)
        return Decision(calls=tuple(calls), step=index) if calls else None
    reply = _reply_value(step, conversation)
    if reply is None or _repeats(reply, conversation):
        return None
    return Decision(reply=reply, step=index)


def _block_end(steps: Sequence[Step], index: int) -> int:
    """Index after the run of consecutive routes starting at ``index`` (or after the step)."""
    end = index + 1
    if isinstance(steps[index], Route):
        while end < len(steps) and isinstance(steps[end], Route):
            end += 1
    return end


def decide(rules: Rules, conversation: Conversation) -> Decision:
    """Apply ``rules`` to the conversation: the first step that fires decides.

    A step whose condition or function raises is logged and skipped, so a faulty rule
    degrades to the fallback instead of failing the run.
    """
    steps = list(rules.steps)
    index = 0
    while index < len(steps):
        try:
            decision = _fires(steps, index, conversation)
        except Exception:
            logger.warning(
                "rule step %d of agent %r raised; skipping it",
                index,
                conversation.agent_name,
                exc_info=True,
            )
            decision = None
        if decision is not None:
            return decision
        index = _block_end(steps, index)
    return Decision(reply=rules.fallback)
