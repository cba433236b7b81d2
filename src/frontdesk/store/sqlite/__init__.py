"""The SQLite backend of the store: one file per frontdesk home, the default."""

from ._schema import SCHEMA_VERSION, STORE_FILENAME, store_path
from ._store import SQLiteStore

__all__ = ["SCHEMA_VERSION", "STORE_FILENAME", "SQLiteStore", "store_path"]
