"""``frontdesk worker``: a process that resumes and drives runs."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import signal
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer

from ._state import console, state

AGENTS_HELP = (
    "An agent to register, as module:attribute or path/to/script.py:attribute (repeatable); "
    "runs started from a script's agents resume here."
)


def register(app: typer.Typer) -> None:
    """Add the ``worker`` command."""
    app.command("worker")(worker)


def _bad(ref: str, why: str) -> typer.BadParameter:
    return typer.BadParameter(f"{ref!r}: {why}", param_hint="'--agents'")


def _load_script(path: Path, ref: str) -> ModuleType:
    """Execute a script file as a module (its ``__main__`` block does not run)."""
    if not path.is_file():
        raise _bad(ref, f"no such file {str(path)!r}")
    # A private name: never offered as a reference another process should import, since a
    # script's agents are stored under their registered names.
    digest = hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogatepass")).hexdigest()
    name = f"_frontdesk_script_{digest[:16]}"
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise _bad(ref, f"cannot load {str(path)!r} as Python")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # as when the script runs: its siblings are importable
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _import_module(module_name: str, ref: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(f"{missing}."):
            raise _bad(ref, f"no module named {missing!r}") from None
        raise  # the module exists but one of its own imports fails: show where
    except ValueError as exc:  # e.g. an empty module name
        raise _bad(ref, str(exc)) from None


def load_agent(ref: str) -> Any:
    """The agent ``ref`` names: ``package.module:attribute`` or ``path/to/file.py:attribute``.

    Raises ``typer.BadParameter`` (a usage error) saying what is wrong with ``ref``.
    """
    from agents import Agent

    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr:
        raise _bad(ref, "expected module:attribute or path/to/script.py:attribute")
    if target.endswith(".py") or "/" in target or "\\" in target:
        module = _load_script(Path(target).expanduser(), ref)
    else:
        module = _import_module(target, ref)
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise _bad(ref, f"{target!r} has no attribute {attr!r}") from None
    if not isinstance(value, Agent):
        raise _bad(ref, f"{attr!r} is a {type(value).__name__}, not an agents.Agent")
    return value


def worker(
    agents: Annotated[list[str] | None, typer.Option("--agents", "-a", help=AGENTS_HELP)] = None,
    poll: Annotated[
        float, typer.Option(min=0.01, help="Seconds between scans for runs to resume.")
    ] = 1.0,
    engine: Annotated[
        str, typer.Option(help="'local' (the embedded engine) or 'temporal'.")
    ] = "local",
    app: Annotated[
        str | None,
        typer.Option(help="With --engine temporal: the app to serve (airline)."),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            help="With --engine temporal: the server's HOST:PORT "
            "(default: $FRONTDESK_TEMPORAL_ADDRESS, else localhost:7233)."
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            help="With --engine temporal: the Temporal namespace "
            "(default: $FRONTDESK_TEMPORAL_NAMESPACE, else default)."
        ),
    ] = None,
    task_queue: Annotated[
        str | None,
        typer.Option(
            help="With --engine temporal --agents: the task queue of the runs "
            "(default: $FRONTDESK_TEMPORAL_TASK_QUEUE, else frontdesk)."
        ),
    ] = None,
) -> None:
    """Resume runs whose process died and runs that became ready (e.g. after an approval).

    With ``--engine temporal --agents REF``: a Temporal worker for the runs of
    ``AgentRuntime(engine="temporal")`` on the task queue, their model calls and tools. With
    ``--engine temporal --app airline``: a Temporal worker for the app's workflows, its model
    calls, tools and handoff hooks.
    """
    from ..runtime import AgentRuntime

    if engine not in ("local", "temporal"):
        raise typer.BadParameter(
            f"unknown engine {engine!r}: use 'local' or 'temporal'", param_hint="'--engine'"
        )
    if engine == "temporal" and app is not None:
        if agents:
            raise typer.BadParameter(
                "use either --app or --agents with --engine temporal", param_hint="'--agents'"
            )
        if task_queue is not None:
            raise typer.BadParameter(
                "an app's workflows run on the app's own task queue", param_hint="'--task-queue'"
            )
        _temporal_worker(app, address, namespace or "default")
        return
    if engine == "temporal" and not agents:
        raise typer.BadParameter(
            "--engine temporal needs --app (airline) or --agents "
            "(module:attribute or path/to/script.py:attribute)",
            param_hint="'--app'",
        )
    if engine == "local":
        for given, hint in (
            (app, "--app"),
            (address, "--address"),
            (namespace, "--namespace"),
            (task_queue, "--task-queue"),
        ):
            if given is not None:
                raise typer.BadParameter(f"{hint} needs --engine temporal", param_hint=f"'{hint}'")
    loaded = [load_agent(ref) for ref in agents or []]
    options: dict[str, Any] = {"engine": engine}
    serving = ""
    if engine == "temporal":
        from ..engine._factory import TemporalSettings

        # Checked (and the environment's defaults applied) before anything is opened.
        settings = TemporalSettings.resolve(address, namespace, task_queue, worker=True)
        options.update(
            temporal_address=settings.address,
            namespace=settings.namespace,
            task_queue=settings.task_queue,
        )
        serving = (
            f", temporal {settings.address} (namespace {settings.namespace}, "
            f"task queue {settings.task_queue})"
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with AgentRuntime(state.home, loaded, model=state.model, poll_interval=poll, **options) as rt:
        console.print(f"worker on {rt.home}{serving} (Ctrl-C to stop)", soft_wrap=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


def _temporal_worker(app_name: str | None, address: str | None, namespace: str) -> None:
    """Serve the app's workflows and activities on Temporal until Ctrl-C or SIGTERM."""
    from .._home import resolve_home
    from ..engine.temporal._client import default_address, parse_address
    from ..engine.temporal._serve import serve, temporal_app
    from ..models._select import MODEL_ENV, RULES, openai_configured

    if app_name is None:
        raise typer.BadParameter("--engine temporal needs --app (airline)", param_hint="'--app'")
    target = parse_address(address or default_address())
    served = temporal_app(app_name)
    home = resolve_home(state.home)
    # As the chat client chooses: the offline rules when no OpenAI key (or server) is set.
    model = state.model or os.environ.get(MODEL_ENV) or (None if openai_configured() else RULES)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def ready() -> None:
        console.print(
            f"temporal worker for {served.name} on {target} (namespace {namespace}, task queue "
            f"{served.task_queue}), model {model or 'of each agent'}, home {home} "
            "(Ctrl-C to stop)",
            soft_wrap=True,
        )

    try:
        serve(
            served,
            target,
            namespace=namespace,
            home=home,
            model=model,
            stop=stop,
            on_ready=ready,
        )
    except KeyboardInterrupt:
        pass
