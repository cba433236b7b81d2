"""The seams stay seams: nothing reaches into the embedded engine's or a store backend's
internals, and no object reaches into another module's private members.

Parsed from the source with ``ast``, the way httpx pins its public API: a new import of an
internal, or a new ``obj._private`` access from another module, fails here with where it is.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import frontdesk
import frontdesk.store
from frontdesk.engine._base import Engine
from frontdesk.engine._types import RunSpec, TokenFeed
from frontdesk.store import Store

SOURCE = Path(frontdesk.__file__).parent
BACKENDS = ("sqlite", "postgres")
"""The store's backend packages."""
PUBLIC_UNDERSCORED = frozenset({"_replace", "_asdict", "_fields", "_make", "_exit", "_getframe"})
"""Underscored names that are documented public API: of named tuples, ``os._exit`` and
``sys._getframe``."""


def modules() -> Iterator[tuple[str, Path, ast.Module]]:
    """Every module of the package: its dotted name, path and syntax tree."""
    for path in sorted(SOURCE.rglob("*.py")):
        parts = ["frontdesk", *path.relative_to(SOURCE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path, ast.parse(path.read_text(encoding="utf-8"))


def imported(name: str, path: Path, tree: ast.Module) -> Iterator[tuple[int, str]]:
    """The absolute dotted names ``tree`` imports (``from x import y`` gives ``x.y`` too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def private_part(dotted: str, under: str) -> bool:
    """Whether ``dotted`` names something private inside ``under``: a private module at any
    depth, or a private member of one of its modules."""
    if not dotted.startswith(under + "."):
        return False
    parts = dotted[len(under) + 1 :].split(".")
    return any(p.startswith("_") and not p.startswith("__") for p in parts)


def test_only_the_embedded_engine_imports_its_internals() -> None:
    found = [
        f"{path.relative_to(SOURCE)}:{line} imports {target}"
        for name, path, tree in modules()
        if not name.startswith("frontdesk.engine.local")
        for line, target in imported(name, path, tree)
        if private_part(target, "frontdesk.engine.local")
    ]
    assert found == []


def test_only_the_store_imports_its_internals_and_its_backends() -> None:
    found = [
        f"{path.relative_to(SOURCE)}:{line} imports {target}"
        for name, path, tree in modules()
        if not name.startswith("frontdesk.store")
        for line, target in imported(name, path, tree)
        if private_part(target, "frontdesk.store")
    ]
    assert found == []


def test_a_backend_imports_no_other_backends_internals() -> None:
    found = [
        f"{path.relative_to(SOURCE)}:{line} imports {target}"
        for name, path, tree in modules()
        for backend in BACKENDS
        if name.startswith("frontdesk.store.")
        and not name.startswith(f"frontdesk.store.{backend}")
        and any(name.startswith(f"frontdesk.store.{other}") for other in BACKENDS)
        for line, target in imported(name, path, tree)
        if private_part(target, f"frontdesk.store.{backend}")
    ]
    assert found == []


def defined_names(tree: ast.Module) -> set[str]:
    """Every name a module defines: functions, classes, assignments and ``self.x`` members."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def test_no_object_reaches_into_another_modules_private_members() -> None:
    found = []
    for _, path, tree in modules():
        own = defined_names(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            attr = node.attr
            if not attr.startswith("_") or attr.startswith("__") or attr in PUBLIC_UNDERSCORED:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if attr in own:
                continue  # the module's own member, reached from its own code
            found.append(f"{path.relative_to(SOURCE)}:{node.lineno} reaches {ast.unparse(node)}")
    assert found == []


def test_the_seam_types_live_beside_the_engine_protocol() -> None:
    for kind in (Engine, RunSpec, TokenFeed):
        assert kind.__module__.startswith("frontdesk.engine._"), kind
        assert not kind.__module__.startswith("frontdesk.engine.local"), kind


def test_the_store_interface_is_abstract_and_exported() -> None:
    assert getattr(Store, "__abstractmethods__", None)
    missing = [n for n in frontdesk.store.__all__ if not hasattr(frontdesk.store, n)]
    assert missing == []
    assert sorted(frontdesk.store.__all__) == sorted(set(frontdesk.store.__all__))
