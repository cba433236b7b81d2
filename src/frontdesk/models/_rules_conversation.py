"""What a rule can see: the conversation as the rules model receives it."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

RULES_LABEL = "[rules baseline: offline, not an LLM]"
"""Appended, on its own final line, to every text message the rules model writes."""

Scope = Literal["agent", "turn", "conversation"]
"""How far back to look for tool calls: the current agent's calls for this user message,
every call made for this user message, or the whole conversation."""

TextScope = Literal["latest", "any"]
"""Which user text to read: the latest user message, or every user message (newest first)."""

_MISSING = object()


def parse_output(raw: str) -> Any:
    """Parse a tool output: JSON, else a Python literal (the SDK prints dicts), else the text."""
    text = raw.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    if text[:1] in ("{", "[", "(", "'", '"'):
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    return raw


def lookup_path(value: Any, path: str) -> Any:
    """Follow a dotted path (``"metadata.order_id"``, ``"charges.0.amount"``); None if absent."""
    current = value
    for part in (p for p in path.split(".") if p):
        if isinstance(current, Mapping):
            current = current.get(part, _MISSING)
        elif isinstance(current, Sequence) and not isinstance(current, str) and part.isdigit():
            index = int(part)
            current = current[index] if index < len(current) else _MISSING
        else:
            current = getattr(current, part, _MISSING)
        if current is _MISSING:
            return None
    return current


def strip_label(text: str) -> str:
    """The text without the rules label line."""
    return text.replace(RULES_LABEL, "").rstrip()


def word_pattern(word: str) -> re.Pattern[str]:
    """A case-insensitive pattern matching ``word`` as a whole word or phrase."""
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)


def canonical_args(args: Mapping[str, Any]) -> str:
    """The JSON form of tool arguments used for calls and for spotting repeats."""
    return json.dumps(args, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call found in the conversation, with its result when there is one."""

    name: str
    args: dict[str, Any]
    call_id: str
    output: str | None
    """The raw output text; None while the call has no output."""
    turn: int
    """Index of the user message this call answered (0 for the first)."""
    segment: int
    """How many handoffs happened before this call in the conversation."""

    @property
    def done(self) -> bool:
        """Whether the call has an output."""
        return self.output is not None

    @property
    def result(self) -> Any:
        """The parsed output (dict, list, number or text); None while there is none."""
        return None if self.output is None else parse_output(self.output)


@dataclass(frozen=True)
class Conversation:
    """The conversation as rules see it. Conditions and argument functions receive this."""

    user_messages: tuple[str, ...] = ()
    previous_assistant: str | None = None
    """The last assistant text message, without the rules label."""
    calls: tuple[ToolCallRecord, ...] = ()
    """Every function-tool call so far (handoffs excluded), oldest first."""
    handoffs: tuple[str, ...] = ()
    """Agents handed off to for the latest user message, in order."""
    handoff_count: int = 0
    """Handoffs in the whole conversation; calls with this segment belong to the current agent."""
    tools: frozenset[str] = frozenset()
    """Names of the tools the current agent may call."""
    handoff_tools: Mapping[str, str] = field(default_factory=dict)
    """Handoff targets available now: agent name -> handoff tool name."""
    agent_name: str = ""
    input_length: int = 0
    """Number of input items; part of every deterministic call id."""

    @property
    def turn(self) -> int:
        """Index of the latest user message."""
        return max(len(self.user_messages) - 1, 0)

    @property
    def last_user(self) -> str:
        """The latest user message ("" when there is none)."""
        return self.user_messages[-1] if self.user_messages else ""

    def texts(self, scope: TextScope = "latest") -> list[str]:
        """User texts to read: the latest message, or all of them newest first."""
        if scope == "latest":
            return [self.last_user]
        return list(reversed(self.user_messages))

    def mentions(self, *words: str, scope: TextScope = "latest") -> bool:
        """Whether a user message contains any of ``words`` (whole words, any case)."""
        return any(word_pattern(w).search(t) for t in self.texts(scope) for w in words)

    def search(self, pattern: str, scope: TextScope = "latest", flags: int = re.I) -> str | None:
        """The first match of ``pattern`` in user text: group 1 if the pattern has groups."""
        compiled = re.compile(pattern, flags)
        for text in self.texts(scope):
            match = compiled.search(text)
            if match:
                return match.group(1) if compiled.groups else match.group(0)
        return None

    def json_message(self) -> Any:
        """The latest user message parsed as JSON (or the first JSON object inside it)."""
        text = self.last_user.strip()
        try:
            return json.loads(text)
        except ValueError:
            pass
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(text[start : end + 1])
            except ValueError:
                return None
        return None

    def calls_in(self, scope: Scope = "conversation") -> list[ToolCallRecord]:
        """Tool calls within ``scope``, oldest first."""
        if scope == "conversation":
            return list(self.calls)
        in_turn = [c for c in self.calls if c.turn == self.turn]
        if scope == "turn":
            return in_turn
        return [c for c in in_turn if c.segment == self.handoff_count]

    def last_call(self, tool: str, scope: Scope = "conversation") -> ToolCallRecord | None:
        """The latest call of ``tool`` within ``scope`` that has an output."""
        for call in reversed(self.calls_in(scope)):
            if call.name == tool and call.done:
                return call
        return None

    def result(self, tool: str, scope: Scope = "conversation") -> Any:
        """The parsed result of the latest finished call of ``tool``; None if there is none."""
        call = self.last_call(tool, scope)
        return None if call is None else call.result

    def called(self, tool: str, scope: Scope = "turn", **args: Any) -> bool:
        """Whether ``tool`` was called within ``scope`` (with these argument values, if given)."""
        return any(
            c.name == tool and all(c.args.get(k) == v for k, v in args.items())
            for c in self.calls_in(scope)
        )

    def already_made(self, tool: str, args: Mapping[str, Any]) -> bool:
        """Whether this exact call was made for the latest user message."""
        key = canonical_args(args)
        return any(c.name == tool and canonical_args(c.args) == key for c in self.calls_in("turn"))


def message_text(content: Any) -> str:
    """The text of a message's content (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable):
        parts: list[str] = []
        for raw_part in content:
            part = _as_dict(raw_part)
            text = part.get("text") or part.get("refusal")
            if isinstance(text, str):
                parts.append(text)
        return "\n".join(parts)
    return ""


def _as_dict(item: Any) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return dict(item)
    dump = getattr(item, "model_dump", None)
    return dump(exclude_unset=True) if callable(dump) else {}


def _output_text(output: Any) -> str:
    return output if isinstance(output, str) else message_text(output)


def _handoff_target(output: str) -> str | None:
    """The agent a handoff output names (the SDK writes ``{"assistant": name}``)."""
    parsed = parse_output(output)
    if isinstance(parsed, Mapping) and set(parsed) == {"assistant"}:
        target = parsed["assistant"]
        return target if isinstance(target, str) else None
    return None


def _iter_items(input: str | Sequence[Any]) -> Iterator[dict[str, Any]]:
    if isinstance(input, str):
        yield {"role": "user", "content": input}
        return
    for item in input:
        yield _as_dict(item)


def read_conversation(
    input: str | Sequence[Any],
    *,
    tools: Iterable[str] = (),
    handoff_tools: Mapping[str, str] | None = None,
    agent_name: str = "",
) -> Conversation:
    """Build the rules' view of a model input (Responses-format items)."""
    items = list(_iter_items(input))
    user_messages: list[str] = []
    previous_assistant: str | None = None
    outputs: dict[str, str] = {}
    for item in items:
        if item.get("type") == "function_call_output":
            outputs[str(item.get("call_id"))] = _output_text(item.get("output"))

    calls: list[ToolCallRecord] = []
    turn_handoffs: list[str] = []
    handoff_count = 0
    for item in items:
        kind, role = item.get("type"), item.get("role")
        if kind in (None, "message") and role == "user":
            user_messages.append(message_text(item.get("content")))
            turn_handoffs = []
        elif kind in (None, "message") and role == "assistant":
            previous_assistant = strip_label(message_text(item.get("content")))
        elif kind == "function_call":
            call_id = str(item.get("call_id"))
            output = outputs.get(call_id)
            target = _handoff_target(output) if output is not None else None
            if target is not None:
                turn_handoffs.append(target)
                handoff_count += 1
                continue
            raw_args = parse_output(str(item.get("arguments") or "{}"))
            calls.append(
                ToolCallRecord(
                    name=str(item.get("name")),
                    args=dict(raw_args) if isinstance(raw_args, Mapping) else {},
                    call_id=call_id,
                    output=output,
                    turn=max(len(user_messages) - 1, 0),
                    segment=handoff_count,
                )
            )
    return Conversation(
        user_messages=tuple(user_messages),
        previous_assistant=previous_assistant,
        calls=tuple(calls),
        handoffs=tuple(turn_handoffs),
        handoff_count=handoff_count,
        tools=frozenset(tools),
        handoff_tools=dict(handoff_tools or {}),
        agent_name=agent_name,
        input_length=len(items),
    )
