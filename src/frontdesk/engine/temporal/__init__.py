"""The Temporal engine's parts: ``AgentRuntime(engine="temporal")`` (``_engine``: one run
workflow per run, tools as activities, history in the runtime's store), the airline
conversation's workflow support, and a local Temporal dev server for development and tests."""
