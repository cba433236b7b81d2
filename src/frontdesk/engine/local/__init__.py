"""The embedded engine: drives runs in this process, over any store."""

from ._engine import LocalEngine

__all__ = ["LocalEngine"]
