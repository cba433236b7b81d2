"""``expect(result)``: chainable assertions on a run, which print the trace when they fail."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..events import Event
from ..runtime import RunResult


class ExpectationFailed(AssertionError):
    """An ``expect(...)`` assertion did not hold. The message includes the run's trace."""


def format_trace(result: RunResult) -> str:
    """The run's trace as plain text, one event per line."""
    from ..cli._render import describe_event

    lines = [
        f"run {result.execution_id}: status={result.status} last_agent={result.last_agent} "
        f"tokens={result.usage.total_tokens}"
    ]
    lines += [f"  {e.seq:>3} {e.agent or '-':<22} {describe_event(e)}" for e in result.events]
    if result.error:
        lines.append(f"  error: {result.error}")
    if result.output is not None:
        lines.append(f"  output: {result.output!r}")
    return "\n".join(lines)


class Expectation:
    """Assertions about one run. Every method returns ``self`` so they chain."""

    def __init__(self, result: RunResult) -> None:
        self.result = result

    def _fail(self, message: str) -> None:
        raise ExpectationFailed(f"{message}\n\n{format_trace(self.result)}")

    def _status(self, status: str) -> Expectation:
        if self.result.status != status:
            self._fail(f"expected the run to be {status}, but it is {self.result.status}")
        return self

    def completed(self) -> Expectation:
        """The run completed."""
        return self._status("completed")

    def failed(self) -> Expectation:
        """The run failed."""
        return self._status("failed")

    def waiting_for_approval(self, tool: str | None = None) -> Expectation:
        """The run is paused for an approval (of ``tool``, if given)."""
        self._status("waiting_approval")
        if tool is not None and not any(a.tool_name == tool for a in self.result.pending_approvals):
            pending = [a.tool_name for a in self.result.pending_approvals]
            self._fail(f"expected a pending approval for {tool!r}, pending: {pending}")
        return self

    def handed_off_to(self, name: str) -> Expectation:
        """Some agent handed off to ``name``."""
        if not any(e.type == "handoff" and e.target == name for e in self.result.events):
            self._fail(f"expected a handoff to {name!r}")
        return self

    def _calls(self, name: str) -> list[Event]:
        return [
            e
            for e in self.result.events
            if e.type in ("tool_call", "approval_required") and e.tool_name == name
        ]

    def called_tool(self, name: str, **args: Any) -> Expectation:
        """Tool ``name`` was called (or asked for approval) with at least these arguments."""
        calls = self._calls(name)
        if not calls:
            self._fail(f"expected a call to {name!r}")
        if args and not any(
            all((e.args or {}).get(k) == v for k, v in args.items()) for e in calls
        ):
            seen = [e.args for e in calls]
            self._fail(f"expected {name!r} to be called with {args}, it was called with {seen}")
        return self

    def did_not_call(self, name: str) -> Expectation:
        """Tool ``name`` was never called nor asked for."""
        if self._calls(name):
            self._fail(f"expected no call to {name!r}")
        return self

    def agent_path(self, path: Sequence[str]) -> Expectation:
        """The run went through exactly these agents, in this order (its start, then each
        handoff's target)."""
        taken = [self.result.agent] + [
            e.target or "?" for e in self.result.events if e.type == "handoff"
        ]
        if taken != list(path):
            self._fail(
                f"expected the agent path {' → '.join(path)}, the run went {' → '.join(taken)}"
            )
        return self

    def tool_calls(self, calls: Sequence[tuple[str, Any]]) -> Expectation:
        """The run called exactly these tools with these arguments (asked for approval or
        run, in any order within the run); each call is ``(tool, arguments)``."""
        seen: dict[str, tuple[str, Any]] = {}
        for e in self.result.events:
            if e.type in ("approval_required", "tool_call", "tool_result") and e.call_id:
                seen.setdefault(e.call_id, (e.tool_name or "?", e.args or {}))
        made = list(seen.values())
        if Counter(map(_call_text, made)) != Counter(map(_call_text, calls)):
            expected = ", ".join(map(_call_text, calls)) or "none"
            self._fail(
                f"expected the tool calls {expected}; the run made "
                f"{', '.join(map(_call_text, made)) or 'none'}"
            )
        return self

    def asked_approval_for(self, tools: Sequence[str]) -> Expectation:
        """The run asked a human to approve calls of exactly these tools, in this order."""
        asked = [e.tool_name for e in self.result.events if e.type == "approval_required"]
        if asked != list(tools):
            message = (
                f"expected approval requests for {', '.join(tools) or 'no tool'}; the run asked "
                f"for {', '.join(t or '?' for t in asked) or 'none'}"
            )
            ran = [
                t
                for t in dict.fromkeys(tools)
                if t not in asked
                and any(e.type == "tool_call" and e.tool_name == t for e in self.result.events)
            ]
            if ran:
                message += f"; {', '.join(ran)} ran without a human's approval"
            self._fail(message)
        return self

    def output_contains(self, text: str) -> Expectation:
        """The final output contains ``text``."""
        output = self.result.output
        if output is None or text not in (output if isinstance(output, str) else str(output)):
            self._fail(f"expected the output to contain {text!r}")
        return self

    def used_at_most_tokens(self, n: int) -> Expectation:
        """The run used at most ``n`` tokens in total."""
        if self.result.usage.total_tokens > n:
            self._fail(
                f"expected at most {n} tokens, the run used {self.result.usage.total_tokens}"
            )
        return self


def _call_text(call: tuple[str, Any]) -> str:
    name, args = call
    return f"{name}({json.dumps(args, sort_keys=True, ensure_ascii=False, default=str)})"


def expect(result: RunResult) -> Expectation:
    """Start a chain of assertions about ``result``."""
    return Expectation(result)
