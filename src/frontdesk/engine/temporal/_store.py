"""What frontdesk's Temporal activities keep outside Temporal's history, in the runtime's store.

Two things, both in the :class:`~frontdesk.store.Store` every worker of a deployment shares
(the home's SQLite file on one machine, PostgreSQL across machines through
``$FRONTDESK_DATABASE_URL``), so what one worker recorded is found by the next, wherever it
runs:

* **Conversation items, by content.** A model call's input is stored as a chain of segments:
  each segment holds the items a call added after its parent's, under a reference that hashes
  the parent's reference and the items (:func:`segment_ref`). A workflow sends a model activity
  the reference of the items the store already has plus only the new ones, so what a model
  call adds to Temporal's history does not grow with the conversation. The same items always
  give the same reference: storing them again is a no-op.
* **The tool calls journal.** One record per tool call, by idempotency key: started, then done
  with its output and the context after it. An activity retried after the tool finished (its
  worker died before Temporal heard of it) returns the journaled result instead of running
  the tool again, on this machine or any other.

:class:`WorkerStore` is the activities' view of the store, in their words.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

from ...errors import FrontdeskError
from ...store import Store, ToolCallRecord, chain_items, open_store


class ItemsMissing(FrontdeskError, LookupError):
    """The store has no items under a reference (another deployment stored them, or they were
    removed); the caller sends the whole list instead."""


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value`` that references are computed from."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def segment_ref(parent: str | None, items: Sequence[Any]) -> str:
    """The reference of ``items`` stored after the segment ``parent`` (None: the start)."""
    digest = hashlib.sha256()
    digest.update((parent or "").encode())
    digest.update(b"\n")
    digest.update(canonical_json(list(items)).encode("utf-8", "surrogatepass"))
    return "items:" + digest.hexdigest()


class WorkerStore:
    """Conversation item segments and the tool calls journal, in a frontdesk store.

    ``store`` is the store to use (a runtime's), or a home: then the store the environment
    names for it is opened (``$FRONTDESK_DATABASE_URL``, else the home's SQLite file) and
    closed by :meth:`close`. Safe to share between threads; blocking (call it off the loop).
    """

    def __init__(self, store: Store | str | os.PathLike[str] | None = None) -> None:
        self._owned = not isinstance(store, Store)
        self.store: Store = store if isinstance(store, Store) else open_store(home=store)
        """Where the records are kept."""

    def close(self) -> None:
        """Close the store if this object opened it."""
        if self._owned:
            self.store.close()

    def __enter__(self) -> WorkerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- conversation items ----------------------------------------------------------------

    def save_items(self, parent: str | None, items: Sequence[Any]) -> str:
        """Store ``items`` after the segment ``parent``; return their reference.

        :class:`ItemsMissing` when ``parent`` is not stored.
        """
        ref = segment_ref(parent, items)
        if not self.store.save_item_segment(ref, parent, canonical_json(list(items)), len(items)):
            raise ItemsMissing(f"no stored conversation items under {parent!r}")
        return ref

    def load_items(self, ref: str) -> list[Any]:
        """Every item up to and including the segment ``ref``, oldest first.

        :class:`ItemsMissing` when ``ref`` (or a segment before it) is not stored.
        """
        items = chain_items(self.store.item_chain(ref))
        if items is None:
            raise ItemsMissing(f"no stored conversation items under {ref!r}")
        return items

    # -- tool calls journal ------------------------------------------------------------------

    def start_tool_call(
        self,
        *,
        idempotency_key: str,
        workflow_id: str,
        call_id: str,
        agent_name: str,
        tool_name: str,
        args_json: str,
        now: float,
    ) -> ToolCallRecord:
        """Record that the tool starts running for this call; the record as it now is.

        A call already done is returned as is (state ``done``): do not run it again.
        """
        return self.store.start_tool_call(
            idempotency_key=idempotency_key,
            workflow_id=workflow_id,
            call_id=call_id,
            agent_name=agent_name,
            tool_name=tool_name,
            args_json=args_json,
            now=now,
        )

    def finish_tool_call(
        self,
        idempotency_key: str,
        output: Any,
        context_type: str | None,
        context_json: str | None,
        now: float,
    ) -> None:
        """Record the tool's output (JSON data) and the context after it."""
        self.store.finish_tool_call(
            idempotency_key,
            output_json=json.dumps(output),
            context_type=context_type,
            context_json=context_json,
            now=now,
        )

    def tool_call(self, idempotency_key: str) -> ToolCallRecord | None:
        """The journal's record of one call, if any."""
        return self.store.tool_call(idempotency_key)

    def tool_calls(self, workflow_id: str) -> list[ToolCallRecord]:
        """Every journaled tool call of a workflow, in the order they started."""
        return self.store.tool_calls(workflow_id)


__all__ = [
    "ItemsMissing",
    "ToolCallRecord",
    "WorkerStore",
    "canonical_json",
    "segment_ref",
]
