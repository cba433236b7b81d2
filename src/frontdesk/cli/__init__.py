"""The ``frontdesk`` command line."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape

from .._dotenv import load_env_files
from .._text import require_text
from ..errors import FrontdeskError, InvalidInput
from . import _approvals, _runs
from ._state import err_console, state, tolerate_unencodable_output

app = typer.Typer(
    name="frontdesk",
    help="Durable runtime for OpenAI Agents SDK customer-service agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(_runs.app, name="runs")
app.add_typer(_approvals.app, name="approvals")

# Commands contributed by the apps and the server; each module adds itself to ``app``.
_EXTENSIONS = (
    "frontdesk.cli._worker",
    "frontdesk.cli._demo",
    "frontdesk.cli._support",
    "frontdesk.cli._eval",
    "frontdesk.cli._disputes",
    "frontdesk.cli._airline",
    "frontdesk.cli._serve",
    "frontdesk.cli._postgres",
    "frontdesk.cli._db",
    "frontdesk.cli._temporal",
)


@app.callback()
def _global(
    home: Annotated[
        str | None, typer.Option(help="frontdesk home (default $FRONTDESK_HOME or ./.frontdesk).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model for every agent: 'rules' (offline) or a model name.")
    ] = None,
) -> None:
    if home is not None and not home.strip():
        raise typer.BadParameter("give a directory, not an empty path", param_hint="'--home'")
    state.home = home
    state.model = model


def _load_extensions() -> None:
    for name in _EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app)


# Click's exception base, found through a public class: Typer vendors Click in recent versions.
_CLICK_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)

USAGE_ERROR = 2
"""Exit code for a mistake in the command line or in what it names (Click's convention)."""


def _fail(message: str, code: int) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    sys.exit(code)


def _check_arguments(args: Sequence[str]) -> None:
    """Refuse arguments that are not text: bytes that were not UTF-8 reach Python as lone
    surrogates, which nothing downstream can store or print."""
    for number, arg in enumerate(args, start=1):
        try:
            require_text(arg, f"argument {number}")
        except InvalidInput as exc:
            _fail(str(exc), USAGE_ERROR)


def _usage_error(exc: Any) -> NoReturn:
    """One line for a command-line mistake, with where to find help."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # a group alone: Typer printed its help
        sys.exit(USAGE_ERROR)
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    _fail(f"{exc.format_message()}{hint}", int(getattr(exc, "exit_code", USAGE_ERROR)))


def main() -> NoReturn:
    """Entry point of the ``frontdesk`` command."""
    try:
        _main()
    except SystemExit as done:
        _leave(done.code)
    _leave(0)


def _leave(code: str | int | None) -> NoReturn:
    """Exit with ``code`` (as ``SystemExit`` takes it)."""
    if "temporalio.bridge" in sys.modules:
        # The Temporal client's native threads can call back into Python while the interpreter
        # finalizes, which aborts the process (PyGILState_Release): once the output is out,
        # leave without finalizing. Nothing of frontdesk's is left to flush by then.
        if isinstance(code, str):
            print(code, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else (0 if code is None else 1))
    sys.exit(code)


def _main() -> None:
    tolerate_unencodable_output()
    _check_arguments(sys.argv[1:])
    _load_extensions()
    try:
        load_env_files()
        code = app(standalone_mode=False)
    except _CLICK_ERROR as exc:
        _usage_error(exc)
    except typer.Abort:
        _fail("aborted", 1)
    except FrontdeskError as exc:
        _fail(str(exc), USAGE_ERROR if isinstance(exc, InvalidInput) else 1)
    sys.exit(code if isinstance(code, int) else 0)
