"""The crashflow run under a budget, started in a child process: ``python -m budgetflow HOME
MAX_MODEL_CALLS``.

The run stores its budget; whichever process drives it next (after an approval, or after this
one is SIGKILLed where ``$CRASH_AT`` parks it) enforces that budget, not its own default.
Writes the run's id to ``execution_id`` and where it stopped to ``parked`` under
``$CRASHFLOW_DIR``, as crashflow does.
"""

from __future__ import annotations

import sys

from frontdesk import AgentRuntime, Budget
from parking import write_marker


def main() -> None:
    import crashflow

    home, max_calls = sys.argv[1], int(sys.argv[2])
    with AgentRuntime(home, recover=False) as runtime:
        result = runtime.run(
            crashflow.triage,
            crashflow.MESSAGE,
            context=crashflow.Ctx(),
            budget=Budget(max_model_calls=max_calls),
        )
        write_marker(crashflow._dir() / "execution_id", result.execution_id)
        write_marker(crashflow._dir() / "parked", result.status)


if __name__ == "__main__":
    main()
