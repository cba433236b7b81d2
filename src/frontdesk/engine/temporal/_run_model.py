"""The run workflow's model calls: one local activity writes what the run reported, then calls
the model.

Before each model call the run has something to report (the agent that started, the previous
model step, a handoff, a tool's result). Rather than a ``frontdesk_run_record`` local activity
of its own, that report rides with the call: :class:`RecordingModel`, each agent copy's model
in the workflow, hands it to the ``frontdesk_run_model`` local activity with the plugin's model
input, and :class:`RunModelActivity` writes it (as ``frontdesk_run_record`` does, once per
key, so a call made again rewrites nothing) and then calls the model as the plugin's model
activity does. The report is in the store before the model answers, as it was, for one local
activity less per model call.

On a retry the call carries its step's key in the run's journal (``model:<k>``, the embedded
engine's keys, which the workflow's steps follow): a response an earlier attempt recorded
there answers it and the model is not called again, as on the embedded engine.
"""

import asyncio
import json
from typing import Any, Protocol

from agents import Agent, ModelProvider
from agents.items import ModelResponse
from pydantic import TypeAdapter

from ._extra import missing_extra
from ._run_activities import RunActivities
from ._run_data import RecordInput, RunModelInput, parse_model_name
from ._stub import ActivityStub

try:
    from temporalio import activity, workflow
    from temporalio.openai_agents import ModelActivityParameters
    from temporalio.openai_agents._invoke_model_activity import ActivityModelInput, ModelActivity
except ImportError as _exc:  # pragma: no cover - the temporal extra is missing
    raise missing_extra(_exc) from _exc

RUN_MODEL_ACTIVITY = "frontdesk_run_model"
"""The local activity of a run workflow's model call."""
MODEL_RESPONSES: TypeAdapter[ModelResponse] = TypeAdapter(ModelResponse)
"""How a model response is kept in a run's journal (``data_json`` of a ``model`` step)."""


class RunModelActivity:
    """The ``frontdesk_run_model`` activity (register :attr:`call` on the worker)."""

    def __init__(self, records: RunActivities, provider: ModelProvider) -> None:
        self.records = records
        """Where a call's report is written (``frontdesk_run_record``'s writes)."""
        self.model = ModelActivity(provider)
        """The plugin's model activity, over the runtime's model selection."""

    @activity.defn(name=RUN_MODEL_ACTIVITY)
    async def call(self, data: RunModelInput) -> ModelResponse:
        """Write the run's report, then answer from the journal (on a retry) or call the
        model."""
        if data.records is not None:
            await self.records.record(data.records)
        named = parse_model_name(data.call.get("model_name"))
        if data.journal_key is not None and named is not None:
            execution_id = named[3]
            recorded = await asyncio.to_thread(
                self.records.recorded_response, execution_id, data.journal_key
            )
            if recorded is not None:
                return MODEL_RESPONSES.validate_python(json.loads(recorded))
        return await self.model.invoke_model_activity(data.call)


class Reports(Protocol):
    """What a run reported and has not written yet (the run workflow)."""

    def unwritten(self) -> RecordInput | None:
        """The report not written yet, or None."""

    def written(self, records: RecordInput) -> None:
        """``records`` (what :meth:`unwritten` gave) are in the store."""

    def journal_key(self) -> str | None:
        """The next model call's step key when an earlier attempt may have recorded its
        response (a retry), else None."""


class RecordingModel(ActivityStub):
    """An agent copy's model in the run workflow: each call is a ``frontdesk_run_model``
    local activity carrying the run's unwritten report. A call that fails leaves the report
    unwritten, for the run's next write."""

    def __init__(
        self,
        model_name: str,
        *,
        agent: Agent[Any],
        params: ModelActivityParameters,
        reports: Reports,
    ) -> None:
        super().__init__(model_name, model_params=params, agent=agent)
        self.reports = reports
        """The run whose report each call writes."""

    async def answer(self, call: ActivityModelInput, summary: str | None) -> ModelResponse:
        """The model's answer, from the local activity that first writes the report."""
        params = self.model_params
        records = self.reports.unwritten()
        response = await workflow.execute_local_activity_method(
            RunModelActivity.call,
            RunModelInput(call, records, self.reports.journal_key()),
            summary=summary,
            schedule_to_close_timeout=params.schedule_to_close_timeout,
            schedule_to_start_timeout=params.schedule_to_start_timeout,
            start_to_close_timeout=params.start_to_close_timeout,
            retry_policy=params.retry_policy,
            cancellation_type=params.cancellation_type,
        )
        if records is not None:
            self.reports.written(records)
        return response


__all__ = ["MODEL_RESPONSES", "RUN_MODEL_ACTIVITY", "RecordingModel", "Reports", "RunModelActivity"]
