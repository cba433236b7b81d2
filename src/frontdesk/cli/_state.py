"""Options shared by every command: where the home is and which model to use."""

from __future__ import annotations

import codecs
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console

from ..runtime import AgentRuntime

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@dataclass
class CliState:
    """Global options given before the command."""

    home: str | None = None
    model: str | None = None


state = CliState()

_REPLACE = "frontdesk-replace"


def _replace_unencodable(error: UnicodeError) -> tuple[bytes, int]:
    """Put U+FFFD (``?`` where the terminal cannot show it) for text the stream cannot encode,
    such as lone surrogates stored by older versions."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    try:
        # Bytes, not text: a codec accepts only ASCII text from an error handler.
        mark = "\ufffd".encode(error.encoding)
    except (UnicodeError, LookupError):
        mark = b"?"
    return mark * (error.end - error.start), error.end


def tolerate_unencodable_output() -> None:
    """Make stdout and stderr print what they cannot encode as replacement characters,
    instead of failing the whole command on one stored character."""
    try:
        codecs.lookup_error(_REPLACE)
    except LookupError:
        codecs.register_error(_REPLACE, _replace_unencodable)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors=_REPLACE)


@contextmanager
def open_runtime(*, model: str | None = None, recover: bool = False) -> Iterator[AgentRuntime]:
    """A runtime on the CLI's home; it drives what it resumes before the command exits."""
    with AgentRuntime(state.home, model=model or state.model, recover=recover) as runtime:
        yield runtime
