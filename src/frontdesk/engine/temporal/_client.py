"""Reaching a Temporal server: addresses, connecting within a bounded time, workflow ids.

Bad input is refused before anything is sent: an address that is not ``HOST:PORT``
(:class:`InvalidTemporalAddress`), a workflow id that is empty, holds control characters or
is longer than the server accepts (:class:`InvalidWorkflowId`). A server that does not answer
gives :class:`TemporalUnreachable` within :data:`CONNECT_TIMEOUT` seconds, never a hang.
"""

from __future__ import annotations

import asyncio
import os
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from ..._text import require_text
from ...errors import FrontdeskError, InvalidInput
from ._extra import missing_extra

try:
    from temporalio.client import Client
    from temporalio.plugin import SimplePlugin
    from temporalio.service import RPCError, RPCStatusCode
except ImportError as _exc:  # pragma: no cover - the temporal extra is missing
    raise missing_extra(_exc) from _exc

ADDRESS_ENV = "FRONTDESK_TEMPORAL_ADDRESS"
"""The Temporal server's ``HOST:PORT`` when no ``--address`` is given."""
DEFAULT_ADDRESS = "localhost:7233"
"""Where ``frontdesk temporal dev`` serves by default."""
DEFAULT_NAMESPACE = "default"
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a server to answer before giving up."""
MAX_WORKFLOW_ID_LENGTH = 1000
"""The server's default limit on a workflow id (``limit.maxIDLength``)."""

_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)$")


class InvalidTemporalAddress(InvalidInput):
    """The Temporal address is not ``HOST:PORT``."""


class InvalidWorkflowId(InvalidInput):
    """The id cannot name a Temporal workflow (a conversation id, for the chat)."""


class TemporalUnreachable(FrontdeskError, ConnectionError):
    """The Temporal server did not answer."""


def default_address() -> str:
    """``$FRONTDESK_TEMPORAL_ADDRESS``, else ``localhost:7233``."""
    return os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS


def parse_address(address: str) -> str:
    """``address`` checked as ``HOST:PORT`` (``[v6]:PORT`` for IPv6), stripped of spaces."""
    text = address.strip() if isinstance(address, str) else ""
    example = "give HOST:PORT, e.g. localhost:7233"
    if not text:
        raise InvalidTemporalAddress(f"the Temporal address is empty: {example}")
    if "://" in text:
        raise InvalidTemporalAddress(
            f"the Temporal address {address!r} has a scheme: {example} (no scheme)"
        )
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise InvalidTemporalAddress(f"the Temporal address {address!r} has no port: {example}")
    if not _HOST.match(host):
        raise InvalidTemporalAddress(
            f"the Temporal address {address!r} has no valid host name: {example}"
        )
    if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidTemporalAddress(
            f"the Temporal address {address!r} has no valid port (1-65535): {example}"
        )
    return f"{host}:{int(port)}"


def check_workflow_id(workflow_id: str, what: str = "the conversation id") -> str:
    """``workflow_id`` when it can name a workflow; :class:`InvalidWorkflowId` otherwise."""
    if not isinstance(workflow_id, str) or not workflow_id.strip():
        raise InvalidWorkflowId(f"{what} is empty")
    require_text(workflow_id, what)
    for index, char in enumerate(workflow_id):
        if unicodedata.category(char) == "Cc":
            raise InvalidWorkflowId(
                f"{what} holds a control character ({char!r} at {index}); use printable text"
            )
    if len(workflow_id) > MAX_WORKFLOW_ID_LENGTH:
        raise InvalidWorkflowId(
            f"{what} is {len(workflow_id)} characters; Temporal accepts at most "
            f"{MAX_WORKFLOW_ID_LENGTH}"
        )
    return workflow_id


def refused_id(exc: RPCError, workflow_id: str, what: str = "the conversation id") -> Exception:
    """The error to raise for an RPC error: the server's refusal of a too long id as
    :class:`InvalidWorkflowId`, anything else unchanged."""
    if exc.status == RPCStatusCode.INVALID_ARGUMENT and "length" in str(exc).lower():
        return InvalidWorkflowId(
            f"{what} is {len(workflow_id)} characters, more than this Temporal server "
            f"accepts: {exc}"
        )
    return exc


async def connect(
    address: str,
    namespace: str = DEFAULT_NAMESPACE,
    *,
    plugins: Sequence[SimplePlugin] = (),
    connect_timeout: float = CONNECT_TIMEOUT,
    **options: Any,
) -> Client:
    """A client of the server at ``address``; :class:`TemporalUnreachable` when it does not
    answer within ``connect_timeout`` seconds."""
    target = parse_address(address)
    if not isinstance(namespace, str) or not namespace.strip():
        raise InvalidInput("the Temporal namespace is empty")
    hint = "start one with `frontdesk temporal dev`, or give --address"
    try:
        async with asyncio.timeout(connect_timeout):
            return await Client.connect(target, namespace=namespace, plugins=plugins, **options)
    except TimeoutError:
        raise TemporalUnreachable(
            f"the Temporal server at {target} did not answer within {connect_timeout:g}s; {hint}"
        ) from None
    except RuntimeError as exc:  # the Rust core's connection errors
        raise TemporalUnreachable(
            f"cannot reach the Temporal server at {target}: {_short(exc)}; {hint}"
        ) from None


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "dns error", "tcp connect error", "timed out"):
        if marker in text:
            return marker.replace("dns error", "unknown host")
    return text if len(text) < 300 else text[:300] + "..."


__all__ = [
    "ADDRESS_ENV",
    "CONNECT_TIMEOUT",
    "DEFAULT_ADDRESS",
    "DEFAULT_NAMESPACE",
    "MAX_WORKFLOW_ID_LENGTH",
    "InvalidTemporalAddress",
    "InvalidWorkflowId",
    "TemporalUnreachable",
    "check_workflow_id",
    "connect",
    "default_address",
    "parse_address",
    "refused_id",
]
