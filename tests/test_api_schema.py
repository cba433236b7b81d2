"""Fuzzing the API against its own OpenAPI schema with schemathesis, in process (ASGI).

Every operation of ``/openapi.json`` gets generated requests, valid and invalid, with the
token; no answer may be a 500, and every answer must match the schema (status codes, content
types, bodies). The store holds real runs, an approval and a conversation, so lookups find
something. Examples are bounded so the whole module runs in well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import positive_data_acceptance

from frontdesk import AgentRuntime
from frontdesk.apps.airline import AirlineAgentContext
from frontdesk.apps.airline import triage_agent as airline_triage
from frontdesk.apps.support import init_db
from frontdesk.apps.support import triage_agent as support_triage
from frontdesk.sandbox.stripe import SandboxServer
from frontdesk.server import create_app
from test_disputes_app import sandbox_fixture  # noqa: F401 (the Stripe sandbox the disputes route reads)

TOKEN = "schema-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def runtime(
    home: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AgentRuntime]:
    monkeypatch.setenv("FRONTDESK_API_TOKEN", TOKEN)
    init_db(home)
    with AgentRuntime(home, model="rules", recover=False) as rt:
        rt.run(support_triage, "I was charged $99 twice (invoice INV-8821). Refund please?")
        rt.run(support_triage, "I cannot log in, please reset my password")
        conversation = rt.conversation("c-1", agent=airline_triage, context=AirlineAgentContext())
        conversation.send("I'd like to change my seat", chat_length=0)
        yield rt


@pytest.fixture
def api_schema(runtime: AgentRuntime) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime), headers=AUTH)


def test_the_api_matches_its_schema_and_never_fails(api_schema: schemathesis.BaseSchema) -> None:
    # The webhook is Stripe's route, not the API: it has its own tests (test_webhooks.py).
    operations = [
        operation
        for operation in (result.ok() for result in api_schema.get_all_operations())
        if operation.path != "/webhooks/stripe"
    ]
    assert len(operations) >= 15
    failures = []
    for operation in operations:
        for mode in schemathesis.GenerationMode:  # valid requests, then invalid ones
            fuzz = settings(
                max_examples=20 if mode == schemathesis.GenerationMode.POSITIVE else 10,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )(given(case=operation.as_strategy(mode))(_check))
            try:
                fuzz()
            except KeyboardInterrupt:
                raise
            except Unsatisfiable:
                assert mode == schemathesis.GenerationMode.NEGATIVE  # nothing to get wrong
            except BaseException as exc:  # every operation's failures, reported together
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)


def _check(case: schemathesis.Case) -> None:
    try:
        response = case.call(headers=AUTH)
    except (ValueError, UnicodeError, requests.RequestException):
        reject()  # a request no HTTP client can send (e.g. a header with a line break)
    # Schema-valid is not always acceptable: an opaque cursor must be one the API gave out,
    # a message must not be blank. Those get a 422 saying why, which is what is asked of them.
    case.validate_response(response, headers=AUTH, excluded_checks=[positive_data_acceptance])
