"""Decoding of Stripe's form encoding (``a[b][0]=x``) and typed access to parameters."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from ._errors import StripeError, invalid_choice, invalid_request, missing_param, unknown_param

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")

# A decoded value: a string leaf, a dict for ``a[b]`` and a list for ``a[]``. Indexed
# arrays (``a[0]``) stay dicts with digit keys until read as a list, so that metadata
# keys that happen to be digits keep working.
FormValue = str | dict[str, Any] | list[Any]


def decode_form(encoded: str) -> dict[str, Any]:
    """Decode a query string or ``application/x-www-form-urlencoded`` body."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(encoded, keep_blank_values=True):
        match = _KEY.match(key)
        if match is None:
            raise invalid_request(f"Invalid parameter name: {key}", param=key)
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        _assign(root, path, value, key)
    return root


def _assign(node: dict[str, Any], path: list[str], value: str, key: str) -> None:
    head, rest = path[0], path[1:]
    if not rest:
        if isinstance(node.get(head), dict | list):
            raise invalid_request(f"Invalid nesting for parameter {key}", param=key)
        node[head] = value
        return
    if rest[0] == "":
        target = node.setdefault(head, [])
        if not isinstance(target, list) or len(rest) > 1:
            raise invalid_request(f"Invalid array parameter {key}", param=key)
        target.append(value)
        return
    child = node.setdefault(head, {})
    if not isinstance(child, dict):
        raise invalid_request(f"Invalid nesting for parameter {key}", param=key)
    _assign(child, rest, value, key)


def _as_list(value: Any) -> list[Any] | None:
    """Read ``a[]`` lists and ``a[0]``/``a[1]`` indexed dicts as a list, else None."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and value and all(k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    return None


class Params:
    """Decoded request parameters, read with the same validation messages as Stripe."""

    def __init__(self, data: dict[str, Any], prefix: str = "") -> None:
        self.data = data
        self._prefix = prefix

    def name(self, key: str) -> str:
        """The full bracketed name of ``key`` (``evidence[receipt]``) for error messages."""
        return f"{self._prefix}[{key}]" if self._prefix else key

    def has(self, key: str) -> bool:
        """Whether ``key`` was sent."""
        return key in self.data

    def reject_unknown(self, allowed: Iterable[str]) -> None:
        """Raise Stripe's "Received unknown parameter" for anything not in ``allowed``."""
        known = set(allowed) | ({"expand"} if not self._prefix else set())
        for key in self.data:
            if key not in known:
                raise unknown_param(self.name(key))

    def _scalar(self, key: str, required: bool) -> str | None:
        if key not in self.data:
            if required:
                raise missing_param(self.name(key))
            return None
        value = self.data[key]
        if not isinstance(value, str):
            raise invalid_request(
                f"Invalid {self.name(key)}: must be a string, not a hash or array",
                param=self.name(key),
            )
        return value

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        choices: tuple[str, ...] | None = None,
        max_length: int = 5000,
    ) -> str | None:
        """A string; an empty value counts as unset."""
        value = self._scalar(key, required)
        if value == "":
            if required:
                raise _empty_value(self.name(key))
            return None
        if value is None:
            return None
        if choices is not None and value not in choices:
            raise invalid_choice(self.name(key), choices)
        if len(value) > max_length:
            raise invalid_request(
                f"Invalid {self.name(key)}: must be at most {max_length} characters",
                param=self.name(key),
            )
        return value

    def integer(
        self,
        key: str,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        """An integer within ``[minimum, maximum]``."""
        raw = self._scalar(key, required)
        if raw is None:
            return None
        if raw == "":
            raise _empty_value(self.name(key))
        try:
            value = int(raw, 10)
        except ValueError:
            raise invalid_request(
                f"Invalid integer: {raw}", param=self.name(key), code="parameter_invalid_integer"
            ) from None
        if minimum is not None and value < minimum:
            raise invalid_request(
                f"This value must be greater than or equal to {minimum}.", param=self.name(key)
            )
        if maximum is not None and value > maximum:
            raise invalid_request(
                f"This value must be less than or equal to {maximum}.", param=self.name(key)
            )
        return value

    def boolean(self, key: str, *, required: bool = False) -> bool | None:
        """``true`` or ``false``."""
        raw = self._scalar(key, required)
        if raw is None:
            return None
        if raw not in ("true", "false"):
            raise invalid_request(f"Invalid boolean: {raw}", param=self.name(key))
        return raw == "true"

    def string_list(self, key: str, *, required: bool = False) -> list[str] | None:
        """An array of strings sent as ``key[]=a`` or ``key[0]=a``."""
        if key not in self.data:
            if required:
                raise missing_param(self.name(key))
            return None
        items = _as_list(self.data[key])
        if items is None or not all(isinstance(item, str) for item in items):
            raise invalid_request(f"Invalid array: {self.name(key)}", param=self.name(key))
        return list(items)

    def hash(self, key: str, *, allowed: Iterable[str] | None = None) -> Params | None:
        """A nested hash, optionally restricted to ``allowed`` keys."""
        if key not in self.data:
            return None
        value = self.data[key]
        if not isinstance(value, dict):
            raise invalid_request(f"Invalid object: {self.name(key)}", param=self.name(key))
        nested = Params(value, self.name(key))
        if allowed is not None:
            nested.reject_unknown(allowed)
        return nested

    def expand(self) -> list[str]:
        """The ``expand`` paths of the request."""
        return self.string_list("expand") or []

    def apply_metadata(self, current: dict[str, str], key: str = "metadata") -> None:
        """Merge sent metadata into ``current`` like Stripe.

        ``metadata[k]=`` deletes key ``k`` and ``metadata=`` clears everything.
        """
        if key not in self.data:
            return
        value = self.data[key]
        if value == "":
            current.clear()
            return
        if not isinstance(value, dict):
            raise invalid_request(f"Invalid object: {self.name(key)}", param=self.name(key))
        for name, item in value.items():
            param = f"{self.name(key)}[{name}]"
            if not isinstance(item, str):
                raise invalid_request(
                    f"Invalid value for {param}: metadata values must be strings", param=param
                )
            if len(name) > 40 or len(item) > 500:
                raise invalid_request(
                    "Metadata keys can be at most 40 characters and values at most 500 characters",
                    param=param,
                )
            if item:
                current[name] = item
            else:
                current.pop(name, None)
        if len(current) > 50:
            raise invalid_request("Metadata can have at most 50 keys", param=self.name(key))


def _empty_value(param: str) -> StripeError:
    return invalid_request(
        f"You passed an empty string for '{param}'. We assume empty values are an attempt to "
        f"unset a parameter; however '{param}' cannot be unset. You should remove '{param}' "
        "from your request or supply a non-empty value.",
        param=param,
        code="parameter_invalid_empty",
    )
