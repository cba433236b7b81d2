"""Which model a run is driven on when a process resumes, approves or retries it.

A run records the model override it was started with (``runs.model_override``): a model name,
``rules``, ``instance:<class>`` for a ``Model`` instance, or nothing (each agent's own model).
Whichever process drives the run later uses that recorded model, never its own override. A
process that cannot provide it (no OpenAI key for an OpenAI model, not the same kind of Model
instance) leaves the run for one that can.
"""

from __future__ import annotations

from ..errors import ModelNotConfigured
from ..models._select import INSTANCE_PREFIX, RULES, ModelSelector


def run_selector(recorded: str | None, own: ModelSelector) -> ModelSelector:
    """The selector for a run that recorded ``recorded``, given this process's own selector.

    Raises :class:`ModelNotConfigured` for a recorded Model instance this process lacks; a
    recorded model name this process cannot reach fails when the graph resolves its models.
    """
    if _normal(recorded) == _normal(own.persistable):
        return own
    if recorded is not None and recorded.startswith(INSTANCE_PREFIX):
        raise ModelNotConfigured(
            f"this process has {describe(own.persistable)}; the run needs a runtime given a "
            f"{recorded[len(INSTANCE_PREFIX) :]} instance as AgentRuntime(model=...)"
        )
    return own.with_override(recorded)


def describe(recorded: str | None) -> str:
    """A recorded model override in words, e.g. ``model 'gpt-4o-mini'``."""
    if recorded is None:
        return "each agent's own model"
    if _normal(recorded) == RULES:
        return "the rules baseline"
    if recorded.startswith(INSTANCE_PREFIX):
        return f"a {recorded[len(INSTANCE_PREFIX) :]} instance given as AgentRuntime(model=...)"
    return f"model {recorded!r}"


def unavailable_note(recorded: str | None, exc: ModelNotConfigured) -> str:
    """The note left on a run this process cannot drive on its recorded model."""
    if recorded is not None and recorded.startswith(INSTANCE_PREFIX):
        reason = str(exc)
    else:
        reason = (
            "set OPENAI_API_KEY (or OPENAI_BASE_URL) in the process that resumes it; "
            "a --model or FRONTDESK_MODEL override does not change a started run's model"
        )
    return (
        f"pending: started on {describe(recorded)}, which this process cannot provide; "
        f"waiting for a process that can ({reason})"
    )


def _normal(recorded: str | None) -> str | None:
    if recorded is not None and recorded.strip().lower() == RULES:
        return RULES
    return recorded
