"""The core's behavioural tests on every engine: the runtime's API (run, start, stream,
handles, history, approvals, cancel, retry), approvals with edited arguments (from the API and
the CLI) and conversations, re-run from their own modules, once on the embedded engine and once
on Temporal, not copied (on the SQLite store: their own modules run them on each store
backend)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import test_approval_controls as approvals
import test_budgets as budgets
import test_conversations as conversations
import test_runtime as api
from frontdesk import AgentRuntime

from conftest import both_engines

pytestmark = both_engines


@pytest.fixture(autouse=True)
def on_engine(engine: str) -> str:
    """Every test here runs on the engine it is parametrised with, whatever its fixtures."""
    return engine


@pytest.fixture
def runtime(home: Path, backend: str, engine: str) -> Iterator[AgentRuntime]:
    """A runtime on the test's home, store and engine that does not scan for orphaned runs."""
    with AgentRuntime(home, recover=False) as rt:
        yield rt


def on_each_engine(check: Callable[..., Any]) -> Callable[..., Any]:
    """``check`` as a test of this module: same fixtures and marks, but parametrised by engine
    here where its own module parametrises it by store backend."""

    @functools.wraps(check)
    def test(*args: Any, **kwargs: Any) -> Any:
        return check(*args, **kwargs)

    marks = test.__dict__.pop("pytestmark", [])
    test.pytestmark = [  # type: ignore[attr-defined]
        mark for mark in marks if not (mark.name == "parametrize" and mark.args[0] == "backend")
    ]
    return test


test_run_completes_with_trace_usage_and_context = on_each_engine(
    api.test_run_completes_with_trace_usage_and_context
)
test_idempotency_key_is_stable = on_each_engine(
    api.test_idempotency_key_is_stable_and_current_tool_call_outside_a_tool_raises
)
test_unmodified_agent_still_works_with_plain_runner = on_each_engine(
    api.test_unmodified_agent_still_works_with_plain_runner
)
test_start_returns_at_once_and_handle_works_from_anywhere = on_each_engine(
    api.test_start_returns_at_once_and_handle_works_from_anywhere
)
test_stream_yields_events_live_and_resumes_from_a_sequence_number = on_each_engine(
    api.test_stream_yields_events_live_and_resumes_from_a_sequence_number
)
test_late_consumer_reads_backlog_then_live_events = on_each_engine(
    api.test_late_consumer_reads_backlog_then_live_events
)
test_module_level_functions_use_a_default_runtime = on_each_engine(
    api.test_module_level_functions_use_a_default_runtime
)
test_history_lists_and_filters_runs = on_each_engine(api.test_history_lists_and_filters_runs)
test_approve_runs_exactly_the_recorded_call = on_each_engine(
    api.test_approve_runs_exactly_the_recorded_call
)
test_reject_never_runs_the_tool_and_tells_the_model_why = on_each_engine(
    api.test_reject_never_runs_the_tool_and_tells_the_model_why
)
test_deciding_twice_or_a_run_that_is_not_waiting_changes_nothing = on_each_engine(
    api.test_deciding_twice_or_a_run_that_is_not_waiting_changes_nothing
)
test_cancel_a_waiting_run_and_refuse_to_cancel_a_finished_one = on_each_engine(
    api.test_cancel_a_waiting_run_and_refuse_to_cancel_a_finished_one
)
test_cancel_a_running_run = on_each_engine(api.test_cancel_a_running_run)
test_failed_run_records_the_error_and_retry_resumes_from_the_journal = on_each_engine(
    api.test_failed_run_records_the_error_and_retry_resumes_from_the_journal
)
test_two_hundred_concurrent_runs_complete = on_each_engine(
    api.test_two_hundred_concurrent_runs_complete
)
test_parallel_tool_calls_are_keyed_by_call_id = on_each_engine(
    api.test_parallel_tool_calls_are_keyed_by_call_id
)
test_engine_implements_the_engine_interface = on_each_engine(
    api.test_local_engine_implements_the_engine_interface
)
test_start_with_an_execution_id_is_idempotent = on_each_engine(
    api.test_start_with_an_execution_id_is_idempotent
)
test_handle_wait_returns_at_an_approval = on_each_engine(
    api.test_handle_wait_returns_at_an_approval
)

# Approvals with edited arguments, on the support desk's offline rules.

desk = approvals.desk
test_edited_arguments_run_the_tool_and_both_are_kept = on_each_engine(
    approvals.test_edited_arguments_run_the_tool_and_both_are_kept
)
test_edits_only_go_with_a_pending_approval = on_each_engine(
    approvals.test_edits_only_go_with_a_pending_approval
)
test_cli_approves_with_edited_arguments_and_records_who = on_each_engine(
    approvals.test_cli_approves_with_edited_arguments_and_records_who
)

# Conversations.

test_conversation_lines_follow_the_history_format_and_state_persists = on_each_engine(
    conversations.test_lines_follow_the_history_format_and_state_persists
)
test_conversation_stale_chat_length_raises_with_the_current_history = on_each_engine(
    conversations.test_stale_chat_length_raises_with_the_current_history
)

# Budgets.

test_a_run_stops_before_the_model_call_its_budget_forbids = on_each_engine(
    budgets.test_a_run_stops_before_the_model_call_its_budget_forbids
)
test_a_runtime_budget_is_the_default_and_a_run_can_replace_or_lift_it = on_each_engine(
    budgets.test_a_runtime_budget_is_the_default_and_a_run_can_replace_or_lift_it
)
test_a_conversation_budget_counts_every_turn = on_each_engine(
    budgets.test_a_conversation_budget_counts_every_turn
)
