"""Span attributes for a run's steps, after the OpenTelemetry GenAI semantic conventions.

Every span carries ``frontdesk.execution_id`` (and ``gen_ai.conversation.id`` for a
conversation turn). Customer text, that is the run's input and output, model output, tool
arguments and results, and approval notes, is added only when content capture is on
(:data:`CAPTURE_CONTENT_ENV` or ``AgentRuntime(trace_content=True)``). Names of agents,
tools and models, ids, token counts, statuses and who decided an approval are not customer
text and are always there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..store import ApprovalRecord, JournalRow, RunRow, decode_value

Attributes = dict[str, str | int | float | bool]

EXECUTION_ID = "frontdesk.execution_id"
"""The run's execution id, on every span of the run."""
OPERATION = "gen_ai.operation.name"
CONVERSATION = "gen_ai.conversation.id"
AGENT = "gen_ai.agent.name"
WORKFLOW = "gen_ai.workflow.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_ID = "gen_ai.response.id"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHED_TOKENS = "gen_ai.usage.cache_read.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
TOOL = "gen_ai.tool.name"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_CALL = "gen_ai.tool.call.id"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = "error.type"

RULES_MODEL = "rules"
"""What ``gen_ai.request.model`` says for the offline rules baseline."""


def common(execution_id: str, conversation_id: str | None) -> Attributes:
    """What every span of the run carries."""
    attributes: Attributes = {EXECUTION_ID: execution_id}
    if conversation_id:
        attributes[CONVERSATION] = conversation_id
    return attributes


def workflow(row: RunRow, attempt: int, content: bool) -> Attributes:
    """The run span: ``invoke_workflow``, its status, attempt and token totals."""
    attributes: Attributes = {
        OPERATION: "invoke_workflow",
        WORKFLOW: workflow_name(row.agent_name),
        AGENT: row.agent_name,
        "frontdesk.run.status": row.status,
        "frontdesk.run.attempt": attempt,
        INPUT_TOKENS: row.input_tokens,
        OUTPUT_TOKENS: row.output_tokens,
    }
    if row.last_agent:
        attributes["frontdesk.run.last_agent"] = row.last_agent
    if content:
        attributes[INPUT_MESSAGES] = _json(input_messages(row.input))
        if row.output_json is not None:
            attributes[OUTPUT_MESSAGES] = _json(final_messages(row.output_json))
        if row.error:
            attributes["frontdesk.run.error"] = row.error
    return attributes


def workflow_name(agent_name: str) -> str:
    """The run's workflow name, as the SDK's own traces name it."""
    return f"frontdesk:{agent_name}"


def agent(name: str, index: int) -> Attributes:
    """An agent span: ``invoke_agent`` for the ``index``-th agent to take the run."""
    return {OPERATION: "invoke_agent", AGENT: name, "frontdesk.agent.index": index}


def model_call(
    row: JournalRow, call: int, model: str | None, provider: str | None, content: bool
) -> Attributes:
    """A model call: ``chat``, the model, the response id and the token usage."""
    attributes: Attributes = {OPERATION: "chat", "frontdesk.model_call": call}
    if row.agent:
        attributes[AGENT] = row.agent
    if model:
        attributes[REQUEST_MODEL] = model
    if provider:
        attributes[PROVIDER] = provider
    response = _loads(row.data_json)
    if not isinstance(response, dict):
        return attributes
    if response.get("response_id"):
        attributes[RESPONSE_ID] = str(response["response_id"])
    usage = response.get("usage") or {}
    attributes[INPUT_TOKENS] = int(usage.get("input_tokens") or 0)
    attributes[OUTPUT_TOKENS] = int(usage.get("output_tokens") or 0)
    cached = _nested(usage, "input_tokens_details", "cached_tokens")
    if cached:
        attributes[CACHED_TOKENS] = cached
    reasoning = _nested(usage, "output_tokens_details", "reasoning_tokens")
    if reasoning:
        attributes[REASONING_TOKENS] = reasoning
    if content:
        attributes[OUTPUT_MESSAGES] = _json(output_messages(response.get("output") or []))
    return attributes


def tool_call(row: JournalRow, call_id: str, content: bool) -> Attributes:
    """A tool call: ``execute_tool``, the tool, the call id and the attempt."""
    attributes: Attributes = {
        OPERATION: "execute_tool",
        TOOL: row.name or "",
        TOOL_TYPE: "function",
        TOOL_CALL: call_id,
        "frontdesk.tool.attempt": row.attempts,
    }
    if row.agent:
        attributes[AGENT] = row.agent
    if content:
        attributes[TOOL_ARGUMENTS] = row.args_json or "{}"
        if row.data_json is not None:
            attributes[TOOL_RESULT] = _result_text(row.data_json)
    return attributes


def handoff(row: JournalRow) -> Attributes:
    """A handoff from ``row.agent`` to the agent ``row.name``."""
    attributes: Attributes = {"frontdesk.handoff.to": row.name or ""}
    if row.agent:
        attributes[AGENT] = row.agent
        attributes["frontdesk.handoff.from"] = row.agent
    return attributes


def approval(record: ApprovalRecord, status: str, content: bool) -> Attributes:
    """The wait for a human decision on one tool call, and what was decided."""
    attributes: Attributes = {
        TOOL: record.tool_name,
        TOOL_CALL: record.call_id,
        "frontdesk.approval.id": record.approval_id,
        "frontdesk.approval.status": status,
    }
    if record.agent:
        attributes[AGENT] = record.agent
    if record.decided_by:
        attributes["frontdesk.approval.decided_by"] = record.decided_by
    if content:
        attributes[TOOL_ARGUMENTS] = _json(record.args)
        if record.note:
            attributes["frontdesk.approval.note"] = record.note
        if record.reason:
            attributes["frontdesk.approval.reason"] = record.reason
    return attributes


# -- messages, as the conventions shape them ----------------------------------------------------


def input_messages(input_json: str) -> list[dict[str, Any]]:
    """The run's input as ``gen_ai.input.messages``."""
    value = _loads(input_json)
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        value = value["message"]  # a conversation turn: the new message
    if isinstance(value, str):
        return [_text("user", value)]
    if isinstance(value, list):
        messages = []
        for item in value:
            if isinstance(item, Mapping) and "role" in item:
                messages.append(_text(str(item["role"]), _content_text(item.get("content"))))
            else:
                messages.append({"role": "user", "parts": [{"type": "generic", "value": item}]})
        return messages
    return [_text("user", json.dumps(value, default=str))]


def final_messages(output_json: str) -> list[dict[str, Any]]:
    """The run's final output as ``gen_ai.output.messages``."""
    value = _loads(output_json)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return [{**_text("assistant", text), "finish_reason": "stop"}]


def output_messages(items: list[Any]) -> list[dict[str, Any]]:
    """A model response's output items as ``gen_ai.output.messages``."""
    parts: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "message":
            for piece in item.get("content") or []:
                if isinstance(piece, Mapping) and piece.get("text") is not None:
                    parts.append({"type": "text", "content": piece["text"]})
                elif isinstance(piece, Mapping) and piece.get("refusal") is not None:
                    parts.append({"type": "refusal", "content": piece["refusal"]})
        elif kind == "function_call":
            parts.append(
                {
                    "type": "tool_call",
                    "id": item.get("call_id"),
                    "name": item.get("name"),
                    "arguments": _loads(item.get("arguments")),
                }
            )
    calls = any(part["type"] == "tool_call" for part in parts)
    return [
        {"role": "assistant", "parts": parts, "finish_reason": "tool_call" if calls else "stop"}
    ]


def _text(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [str(p.get("text")) for p in content if isinstance(p, Mapping) and p.get("text")]
        if texts:
            return "\n".join(texts)
    return json.dumps(content, default=str)


def _result_text(data_json: str) -> str:
    try:
        value = decode_value(data_json)
    except (ValueError, TypeError, AttributeError):
        return data_json
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _nested(data: Mapping[str, Any], outer: str, inner: str) -> int:
    part = data.get(outer)
    return int(part.get(inner) or 0) if isinstance(part, Mapping) else 0


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
