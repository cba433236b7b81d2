"""Serializing the run context across the durable boundary.

A run's context must survive a crash, so it crosses the boundary as data: a type reference
plus JSON. Pydantic models, dataclasses and JSON values (dicts, lists, strings, numbers) are
supported; anything else is refused up front with a clear error.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from typing import Any

from pydantic import BaseModel

from ..errors import InvalidInput


class ContextNotSerializable(InvalidInput):
    """The context object cannot be persisted, so the run could not survive a crash."""


def dump_context(context: Any) -> tuple[str | None, str | None]:
    """Return ``(type_ref, json)`` for ``context``."""
    if context is None:
        return None, None
    if isinstance(context, BaseModel):
        return f"pydantic:{_ref(type(context))}", context.model_dump_json()
    if dataclasses.is_dataclass(context) and not isinstance(context, type):
        try:
            return f"dataclass:{_ref(type(context))}", json.dumps(dataclasses.asdict(context))
        except TypeError as exc:
            raise ContextNotSerializable(
                f"dataclass context is not JSON-serializable: {exc}"
            ) from exc
    try:
        return "json", json.dumps(context)
    except TypeError as exc:
        raise ContextNotSerializable(
            f"a context of type {type(context).__name__} cannot be persisted: use a Pydantic "
            "model, a dataclass or a JSON-serializable dict"
        ) from exc


def load_context(type_ref: str | None, data: str | None) -> Any:
    """Rebuild a context from :func:`dump_context` output."""
    if type_ref is None or data is None:
        return None
    if type_ref == "json":
        return json.loads(data)
    kind, _, ref = type_ref.partition(":")
    cls = _import(ref)
    if kind == "pydantic":
        return cls.model_validate_json(data)
    if kind == "dataclass":
        return cls(**json.loads(data))
    raise InvalidInput(f"unknown context type reference {type_ref!r}")


def restore_into(target: Any, type_ref: str | None, data: str | None) -> Any:
    """Make ``target`` equal to the stored snapshot, in place where possible.

    Tools and hooks hold a reference to the context object, so it is updated in place
    rather than replaced. Returns the object that now holds the state.
    """
    fresh = load_context(type_ref, data)
    if isinstance(target, BaseModel) and isinstance(fresh, BaseModel):
        for name in type(target).model_fields:
            setattr(target, name, getattr(fresh, name))
        return target
    if dataclasses.is_dataclass(target) and not isinstance(target, type):
        for f in dataclasses.fields(target):
            setattr(target, f.name, getattr(fresh, f.name))
        return target
    if isinstance(target, dict) and isinstance(fresh, dict):
        target.clear()
        target.update(fresh)
        return target
    if isinstance(target, list) and isinstance(fresh, list):
        target[:] = fresh
        return target
    return fresh


def _ref(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import(ref: str) -> Any:
    module, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj
