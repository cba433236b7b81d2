"""``frontdesk db info`` and ``frontdesk db migrate``: the store the CLI uses, and its schema.

The store is ``$FRONTDESK_DATABASE_URL`` (or ``--database-url``), else the home's SQLite file.
``info`` reads the schema version without changing anything; ``migrate`` upgrades the schema
to this frontdesk's version (a store written by a newer frontdesk is refused, untouched).
"""

from __future__ import annotations

from typing import Annotated

import typer

from ..store import StoreInfo, open_store
from ._render import print_json
from ._state import console, state

db_app = typer.Typer(help="The database runs are stored in, and its schema.", no_args_is_help=True)

URL_HELP = (
    "The database (sqlite:///path or postgresql://...); default $FRONTDESK_DATABASE_URL, "
    "else the home's SQLite file."
)


def register(app: typer.Typer) -> None:
    """Add the ``db`` command group."""
    app.add_typer(db_app, name="db")


def _describe(info: StoreInfo) -> dict[str, object]:
    return {
        "backend": info.backend,
        "url": info.url,
        "schema_version": info.schema_version,
        "code_version": info.code_version,
        "needs_migration": info.needs_migration,
    }


@db_app.command("info")
def info(
    database_url: Annotated[str | None, typer.Option(help=URL_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the backend, the URL (password hidden) and the schema versions."""
    store = open_store(database_url, home=state.home, migrate=False)
    try:
        found = store.info()
    finally:
        store.close()
    if as_json:
        print_json(console, _describe(found))
        return
    console.print(f"backend:        {found.backend}", markup=False)
    console.print(f"url:            {found.url}", markup=False, soft_wrap=True)
    console.print(f"schema version: {found.schema_version}", markup=False)
    console.print(f"code's version: {found.code_version}", markup=False)
    if found.schema_version > found.code_version:
        console.print("the database was written by a newer frontdesk: upgrade frontdesk")
    elif found.needs_migration:
        console.print("run `frontdesk db migrate` to upgrade the schema", markup=False)
    else:
        console.print("the schema is up to date")


@db_app.command("migrate")
def migrate(
    database_url: Annotated[str | None, typer.Option(help=URL_HELP)] = None,
) -> None:
    """Create or upgrade the schema to this frontdesk's version."""
    store = open_store(database_url, home=state.home, migrate=False)
    try:
        before, after = store.migrate()
    finally:
        store.close()
    if before == after:
        console.print(f"schema version {after}: already up to date", markup=False)
    else:
        console.print(f"schema upgraded from version {before} to {after}", markup=False)
