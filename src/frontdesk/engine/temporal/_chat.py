"""A chat workflow seen from a terminal client: the seed's client, as a conversation object.

:class:`TemporalConversation` gives a workflow with the seed's interface (a
``process_user_message`` update taking ``user_input`` and ``chat_length``, a
``get_chat_history`` query) the methods the embedded ``Conversation`` has, ``history()`` and
``send()``, with the same errors, so the terminal client of ``frontdesk chat`` drives either
engine alike. Opening it starts the workflow when no run of it is open; a message the
workflow refuses because the client's history is out of date raises
:class:`~frontdesk.errors.StaleConversation` with the current history.

Its methods are synchronous: the Temporal client lives on an event loop in a thread of its
own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from ..._text import require_text
from ...conversations import DEFAULT_MAX_INPUT_CHARS
from ...errors import EmptyMessage, FrontdeskError, InvalidInput, MessageTooLong, StaleConversation
from ._client import DEFAULT_NAMESPACE, TemporalUnreachable, check_workflow_id, connect, refused_id
from ._extra import missing_extra

try:
    from pydantic import BaseModel
    from temporalio.client import (
        Client,
        WorkflowHandle,
        WorkflowQueryRejectedError,
        WorkflowUpdateFailedError,
    )
    from temporalio.common import QueryRejectCondition
    from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
    from temporalio.plugin import SimplePlugin
    from temporalio.service import RPCError, RPCStatusCode
except ImportError as _exc:  # pragma: no cover - the temporal extra is missing
    raise missing_extra(_exc) from _exc

T = TypeVar("T")

STALE_MARK = "Stale chat history"
"""How the workflow's validator words a refusal of an out-of-date history."""
TURN_TIMEOUT = 300.0
"""Seconds a message may take to be answered before the client stops waiting."""


class TurnNotAnswered(FrontdeskError):
    """The workflow accepted the message but could not answer it (nothing was kept)."""


class _Loop:
    """An event loop in a daemon thread; :meth:`run` waits for a coroutine from any thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="frontdesk-temporal-client", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TemporalUnreachable(
                f"no answer from the Temporal server within {timeout:g}s"
            ) from None
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


class TemporalConversation:
    """One conversation: a workflow of the seed's kind, by id (see the module's docs).

    ``workflow`` is the workflow's type name, ``message_type`` the update's input model.
    """

    def __init__(
        self,
        conversation_id: str,
        *,
        workflow: str,
        message_type: type[BaseModel],
        task_queue: str,
        address: str,
        namespace: str = DEFAULT_NAMESPACE,
        plugins: Sequence[SimplePlugin] = (),
        max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
        turn_timeout: float = TURN_TIMEOUT,
    ) -> None:
        self.conversation_id = check_workflow_id(conversation_id)
        """The conversation's (the workflow's) id."""
        self.max_input_chars = max_input_chars
        """The longest message :meth:`send` accepts."""
        self.turn_timeout = turn_timeout
        """Seconds :meth:`send` waits for an answer."""
        self._workflow = workflow
        self._message_type = message_type
        self._task_queue = task_queue
        self._loop = _Loop()
        try:
            self._client: Client = self._loop.run(connect(address, namespace, plugins=plugins))
            self._handle: WorkflowHandle[Any, Any] = self._client.get_workflow_handle(
                conversation_id
            )
        except BaseException:
            self._loop.close()
            raise

    def close(self) -> None:
        """Stop the client's event loop."""
        self._loop.close()

    def __enter__(self) -> TemporalConversation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> list[str]:
        """The history so far, starting the workflow when no run of it is open."""
        return self._loop.run(self._open(), self.turn_timeout)

    def history(self) -> list[str]:
        """Every line of the conversation, oldest first."""
        return self._loop.run(self._query(), self.turn_timeout)

    def validate(self, user_input: str) -> None:
        """Raise a ``ValueError`` subclass for empty, over-long or invalid input."""
        if not isinstance(user_input, str):
            raise InvalidInput(f"user input must be a str, got {type(user_input).__name__}")
        if not user_input.strip():
            raise EmptyMessage("the message is empty")
        if len(user_input) > self.max_input_chars:
            raise MessageTooLong(len(user_input), self.max_input_chars)
        require_text(user_input, "the message")

    def send(self, user_input: str, chat_length: int | None = None) -> list[str]:
        """Answer ``user_input``; the new history lines (the ``User:`` line first).

        :class:`StaleConversation` (with the current history) when ``chat_length`` is not
        the history's length or another message is being answered; nothing is stored.
        """
        self.validate(user_input)
        length = len(self.history()) if chat_length is None else chat_length
        return self._loop.run(self._send(user_input, length), self.turn_timeout)

    async def _raw_query(self) -> list[str]:
        lines: list[str] = await self._handle.query(
            "get_chat_history",
            reject_condition=QueryRejectCondition.NOT_OPEN,
            result_type=list[str],
        )
        return lines

    async def _query(self) -> list[str]:
        try:
            return await self._raw_query()
        except RPCError as exc:
            raise _rpc_error(exc, self.conversation_id) from exc

    async def _open(self) -> list[str]:
        try:
            return await self._raw_query()
        except WorkflowQueryRejectedError:
            pass  # closed (terminated, failed): a new run starts under the same id
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise _rpc_error(exc, self.conversation_id) from exc
        try:
            await self._client.start_workflow(
                self._workflow, id=self.conversation_id, task_queue=self._task_queue
            )
        except WorkflowAlreadyStartedError:
            pass  # another client started it meanwhile
        except RPCError as exc:
            raise _rpc_error(exc, self.conversation_id) from exc
        return await self._query()

    async def _send(self, user_input: str, chat_length: int) -> list[str]:
        message = self._message_type.model_validate(
            {"user_input": user_input, "chat_length": chat_length}
        )
        try:
            lines: list[str] = await self._handle.execute_update(
                "process_user_message", message, result_type=list[str]
            )
        except WorkflowUpdateFailedError as failed:
            cause = failed.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
            if STALE_MARK in reason:
                raise StaleConversation(
                    f"stale conversation {self.conversation_id!r}: {reason}",
                    history=await self._query(),
                ) from None
            if isinstance(cause, ApplicationError) and cause.type == "ValueError":
                raise InvalidInput(reason) from None
            raise TurnNotAnswered(reason) from None
        except RPCError as exc:
            raise _rpc_error(exc, self.conversation_id) from exc
        return lines


def _rpc_error(exc: RPCError, conversation_id: str) -> Exception:
    refused = refused_id(exc, conversation_id)
    if refused is not exc:
        return refused
    if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return TemporalUnreachable(f"the Temporal server did not answer: {exc}")
    return TurnNotAnswered(f"the Temporal server refused the request: {exc}")


__all__ = ["TURN_TIMEOUT", "TemporalConversation", "TurnNotAnswered"]
