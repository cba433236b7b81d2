"""The PostgreSQL side of the store: local PostgreSQL clusters for development and tests."""

from ._cluster import LocalPostgres

__all__ = ["LocalPostgres"]
