"""The model of an agent copy in a workflow: a stub of the plugin's kind whose calls go to an
activity of frontdesk's instead of the plugin's model activity.

:class:`ActivityStub` takes the SDK's model call, builds the plugin's model input from it as
the plugin's own stub does (so the worker calls the model exactly as the plugin's activity
would), and leaves the activity to a subclass's :meth:`ActivityStub.answer`.
"""

from __future__ import annotations

from abc import abstractmethod

from agents import (
    AgentOutputSchemaBase,
    Handoff,
    ModelResponse,
    ModelSettings,
    ModelTracing,
    Tool,
    TResponseInputItem,
)
from openai.types.responses.response_prompt_param import ResponsePromptParam

from ._extra import missing_extra

try:
    from temporalio.openai_agents._invoke_model_activity import ActivityModelInput
    from temporalio.openai_agents._temporal_model_stub import _TemporalModelStub
except ImportError as _exc:  # pragma: no cover - the temporal extra is missing
    raise missing_extra(_exc) from _exc


class ActivityStub(_TemporalModelStub):
    """A plugin-kind model stub whose calls :meth:`answer` runs as an activity."""

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        """The model's answer to the call, from :meth:`answer`."""
        call, summary = self._build_activity_input(
            system_instructions=system_instructions,
            input=input,
            model_settings=model_settings,
            tools=tools,
            output_schema=output_schema,
            handoffs=handoffs,
            tracing=tracing,
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            prompt=prompt,
        )
        return await self.answer(call, summary)

    @abstractmethod
    async def answer(self, call: ActivityModelInput, summary: str | None) -> ModelResponse:
        """Run the model call ``call`` (the plugin's model input) as an activity shown as
        ``summary``, and return its answer."""


__all__ = ["ActivityStub"]
