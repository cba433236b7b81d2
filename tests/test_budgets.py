"""Token and cost budgets: a run stops cleanly before the model call its budget forbids, its
journal intact for a retry with a raised budget; the budget is stored with the run (and with a
conversation, over all its turns), so another process enforces it too; one price table prices
budgets, reports and the console; ``frontdesk runs list/show/stats`` report tokens and cost."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, ModelProvider, RunContextWrapper
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.usage import Usage as SdkUsage
from fastapi import FastAPI

from frontdesk import (
    AgentRuntime,
    Budget,
    BudgetExceeded,
    InvalidInput,
    InvalidRunState,
    Price,
    Prices,
    RunResult,
    tool,
)
from frontdesk.server import install_console
from test_crash_recovery import make_dirs, spawn, wait_parked

import crashflow
from conftest import PYTHON, WAIT_SECONDS, Children, child_env, sigkill, wait_until

MODEL = "test-model"
PRICES = {MODEL: Price(input=1.0, output=2.0)}
"""$1 per million input tokens, $2 per million output: a call of 1000 + 500 tokens is $0.002."""
CALL_COST = 0.002


class Calls:
    """A scripted model that counts its calls: look up INV-1, then INV-2, then answer.

    Each call reports 1000 input and 500 output tokens. Its answer depends only on the tool
    outputs it sees, so a retried run's live calls continue from what the journal replayed.
    """

    def __init__(self, *, answer_only: bool = False) -> None:
        self.answer_only = answer_only
        self.made = 0
        self.tools: list[str] = []
        self.model = ScriptedModel([ModelStep.respond(self.respond) for _ in range(100)])

    def respond(self, call: Any) -> Any:
        self.made += 1
        items = [i if isinstance(i, dict) else i.model_dump() for i in call.input]
        seen = {i["call_id"] for i in items if i.get("type") == "function_call_output"}
        usage = SdkUsage(requests=1, input_tokens=1000, output_tokens=500, total_tokens=1500)
        if self.answer_only:
            output = [assistant_message(f"Answer {self.made}.")]
        elif "c1" not in seen:
            output = [function_call("lookup", {"invoice_id": "INV-1"}, call_id="c1")]
        elif "c2" not in seen:
            output = [function_call("lookup", {"invoice_id": "INV-2"}, call_id="c2")]
        else:
            output = [assistant_message("Both invoices are paid.")]
        return ModelStep(output=output, usage=usage)


class Provider(ModelProvider):
    """Gives every model name the same scripted model: agents keep their model names."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def get_model(self, model_name: str | None) -> Any:
        return self.model


def billing(calls: Calls) -> Agent[Any]:
    @tool
    def lookup(wrapper: RunContextWrapper[Any], invoice_id: str) -> str:
        """Look up an invoice."""
        calls.tools.append(invoice_id)
        return f"{invoice_id}: paid"

    return Agent(name="billing", model=MODEL, tools=[lookup])


def runtime_for(home: Path, calls: Calls, **options: Any) -> AgentRuntime:
    options.setdefault("prices", PRICES)
    return AgentRuntime(home, model_provider=Provider(calls.model), recover=False, **options)


def steps(result: RunResult) -> list[str]:
    return [s.key for s in result.steps if s.state == "done"]


# -- stopping ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "limit", "value", "used"),
    [
        (Budget(max_model_calls=2), "max_model_calls", 2, 2),
        (Budget(max_tokens=2500), "max_tokens", 2500, 3000),
        (Budget(max_cost_usd=0.0035), "max_cost_usd", 0.0035, 2 * CALL_COST),
    ],
    ids=["model_calls", "tokens", "cost"],
)
def test_a_run_stops_before_the_model_call_its_budget_forbids(
    home: Path, budget: Budget, limit: str, value: float, used: float
) -> None:
    calls = Calls()
    with runtime_for(home, calls) as runtime:
        result = runtime.run(billing(calls), "are INV-1 and INV-2 paid?", budget=budget)
        assert result.status == "budget_exceeded"
        assert calls.made == 2 and calls.tools == ["INV-1", "INV-2"]
        # The journal holds both calls and both tools, and nothing of the call not made.
        assert [s.key for s in result.steps if s.kind == "model"] == ["model:1", "model:2"]
        assert all(s.state == "done" for s in result.steps)
        assert result.usage.total_tokens == 3000
        assert result.budget == budget
        event = result.events[-1]
        assert event.type == "budget_exceeded"
        assert (event.data["limit"], event.data["model_call"]) == (limit, 3)
        assert math.isclose(event.data["limit_value"], value)
        assert math.isclose(event.data["used"], used)
        assert event.usage is not None and event.usage.total_tokens == 3000
        assert result.error is not None and limit in result.error
        assert result.finished_at is not None and result.output is None
        assert math.isclose(runtime.cost(result.execution_id) or 0, 2 * CALL_COST)
        # A settled status: handles stop waiting, nothing drives the run any more.
        assert runtime.handle(result.execution_id).result(timeout=WAIT_SECONDS).status == (
            "budget_exceeded"
        )
        assert [r.execution_id for r in runtime.runs(status="budget_exceeded")] == [
            result.execution_id
        ]


def test_retry_with_a_raised_budget_goes_on_where_the_run_stopped(home: Path) -> None:
    calls = Calls()
    with runtime_for(home, calls) as runtime:
        stopped = runtime.run(billing(calls), "paid?", budget=Budget(max_tokens=2500))
        assert stopped.status == "budget_exceeded" and calls.made == 2
        run_id = stopped.execution_id

        with pytest.raises(InvalidRunState, match="would stop again at once, max_tokens"):
            runtime.retry(run_id)
        with pytest.raises(InvalidRunState, match="max_tokens is 2800 and 3000 was used"):
            runtime.retry(run_id, budget=Budget(max_tokens=2800))
        assert runtime.get(run_id).status == "budget_exceeded"
        assert runtime.get(run_id).budget == Budget(max_tokens=2500)

        done = runtime.retry(run_id, budget=Budget(max_tokens=10_000)).result(WAIT_SECONDS)
        assert done.status == "completed" and done.output == "Both invoices are paid."
        # Committed calls and tools replayed; only the third call was made.
        assert calls.made == 3 and calls.tools == ["INV-1", "INV-2"]
        assert steps(done) == [
            "model:1", "tool:1:c1", "model:2", "tool:2:c2", "model:3",
        ]  # fmt: skip
        assert done.budget == Budget(max_tokens=10_000)
        assert done.usage.total_tokens == 4500
        types = [e.type for e in done.events]
        assert types.count("budget_exceeded") == 1 and types[-1] == "done"
        assert math.isclose(runtime.cost(run_id) or 0, 3 * CALL_COST)


def test_a_runtime_budget_is_the_default_and_a_run_can_replace_or_lift_it(home: Path) -> None:
    calls = Calls()
    agent = billing(calls)
    with runtime_for(home, calls, budget=Budget(max_model_calls=1)) as runtime:
        default = runtime.run(agent, "paid?")
        assert default.status == "budget_exceeded" and calls.made == 1
        assert default.budget == Budget(max_model_calls=1)
        own = runtime.run(agent, "paid?", budget=Budget(max_model_calls=3))
        assert own.status == "completed" and own.budget == Budget(max_model_calls=3)
        lifted = runtime.run(agent, "paid?", budget=Budget())
        assert lifted.status == "completed" and lifted.budget is None
        assert calls.made == 1 + 3 + 3
        handle = runtime.start(agent, "paid?", budget=Budget(max_model_calls=2))
        assert handle.result(WAIT_SECONDS).status == "budget_exceeded"
        stream = runtime.stream(agent, "paid?", budget=Budget(max_model_calls=1))
        assert [e.type for e in stream if e.type != "text_delta"][-1] == "budget_exceeded"
        assert stream.get_result(WAIT_SECONDS).status == "budget_exceeded"
        assert calls.made == 7 + 2 + 1


async def test_run_async_takes_a_budget(home: Path) -> None:
    calls = Calls()
    with runtime_for(home, calls) as runtime:
        result = await runtime.run_async(
            billing(calls), "paid?", budget=Budget(max_cost_usd=CALL_COST / 2)
        )
    assert result.status == "budget_exceeded" and calls.made == 1


def test_a_conversation_budget_counts_every_turn(home: Path) -> None:
    calls = Calls(answer_only=True)
    answer = Agent(name="desk", model=MODEL)  # one call (1500 tokens) per turn
    with runtime_for(home, calls) as runtime:
        conv = runtime.conversation("c1", agent=answer, budget=Budget(max_tokens=4000))
        for message in ("one", "two", "three"):  # 1500, 3000, then 4500 (3000 < 4000 before)
            assert conv.send(message)[0] == f"User: {message}"
        assert calls.made == 3
        with pytest.raises(BudgetExceeded, match="max_tokens is 4000 and 4500 was used"):
            conv.send("four")
        assert calls.made == 3 and conv.turns == 3 and conv.pending_run is None
        stopped = conv.runs()[0]
        assert stopped.status == "budget_exceeded" and stopped.budget == Budget(max_tokens=4000)
        assert stopped.events[-1].data["used"] == 4500
        # A runtime without a budget reopens it: the conversation's own still counts.
        with runtime_for(home, calls) as other:
            with pytest.raises(BudgetExceeded):
                other.conversation("c1", agent=answer).send("five")
            assert other.conversation("c1").budget == Budget(max_tokens=4000)
        assert calls.made == 3
        raised = runtime.conversation("c1", budget=Budget(max_tokens=7000))
        assert raised.send("six")[0] == "User: six" and calls.made == 4
        assert raised.send("seven")[0] == "User: seven"  # 6000 used before it: allowed
        with pytest.raises(BudgetExceeded, match="max_tokens is 7000 and 7500 was used"):
            raised.send("eight")
        assert raised.turns == 5 and calls.made == 5


def test_another_process_that_recovers_the_run_enforces_its_budget(
    children: Children, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow_dir, home = make_dirs(tmp_path)
    monkeypatch.setenv("CRASHFLOW_DIR", str(flow_dir))
    # The child runs under max_model_calls=2 and is killed while its second call is made.
    proc = spawn(children, flow_dir, home, "after_model:1", "budgetflow", str(home), "2")
    assert wait_parked(flow_dir, proc) == "after_model:1"
    sigkill(proc)
    # This process's own default would allow many more calls; the run's stored budget wins.
    with AgentRuntime(home, recover=False, budget=Budget(max_model_calls=50)) as runtime:
        (run_id,) = [r.execution_id for r in runtime.runs()]

        def settled() -> RunResult | None:
            runtime.recover()
            result = runtime.get(run_id)
            return result if result.status != "running" else None

        result = wait_until(settled, f"run {run_id} to settle here")
        assert result.status == "budget_exceeded"
        assert result.events[-1].data["limit"] == "max_model_calls"
        assert result.events[-1].data["used"] == 2
        # Call 1 was the child's; call 2 was made here; call 3 never.
        assert len(lines(flow_dir, "models.log")) == 2
        assert result.budget == Budget(max_model_calls=2)


def test_a_run_resumed_after_an_approval_keeps_its_budget_and_a_cli_retry_raises_it(
    children: Children, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow_dir, home = make_dirs(tmp_path)
    monkeypatch.setenv("CRASHFLOW_DIR", str(flow_dir))
    proc = spawn(children, flow_dir, home, None, "budgetflow", str(home), "3")
    _out, err = proc.communicate(timeout=WAIT_SECONDS)
    assert proc.returncode == 0, err.decode()
    assert (flow_dir / "parked").read_text() == "waiting_approval"
    run_id = (flow_dir / "execution_id").read_text()
    with AgentRuntime(home, recover=False) as runtime:
        runtime.approve(run_id, by="lead")
        result = runtime.handle(run_id).result(WAIT_SECONDS)
    assert result.status == "budget_exceeded"  # the refund ran; the fourth call did not
    assert len(lines(flow_dir, "models.log")) == 3
    assert sorted(line.split()[1] for line in lines(flow_dir, "effects.log")) == sorted(
        ["lookup_invoice", "lookup_account", "refund"]
    )

    retried = cli(home, "runs", "retry", run_id, "--max-model-calls", "4", flow_dir=flow_dir)
    assert "completed" in retried.stdout
    with AgentRuntime(home, recover=False) as runtime:
        done = runtime.get(run_id)
    assert done.status == "completed" and done.budget == Budget(max_model_calls=4)
    assert done.context == crashflow.Ctx(route="billing", invoice_total=99.0, refunded=True)
    # Nothing ran twice: four model calls in all, and each tool's effect once.
    assert len(lines(flow_dir, "models.log")) == 4
    assert len(lines(flow_dir, "effects.log")) == 3


def lines(flow_dir: Path, name: str) -> list[str]:
    path = flow_dir / name
    return path.read_text().splitlines() if path.exists() else []


# -- prices -----------------------------------------------------------------------------------------


def test_the_price_table_is_extended_and_overridden_and_the_console_uses_it(home: Path) -> None:
    calls = Calls()
    table = {MODEL: Price(1.0, 2.0), "gpt-4o": (5.0, 15.0), "My-Finetune": [3, 12]}
    with runtime_for(home, calls, prices=table) as runtime:
        prices = runtime.prices
        assert prices.price_of("gpt-4o-2024-08-06") == Price(5.0, 15.0)  # overridden
        assert prices.price_of("gpt-4o-mini") == Price(0.15, 0.60)  # a default, longer prefix
        assert prices.price_of("openai/my-finetune-v2") == Price(3.0, 12.0)  # added
        assert prices.price_of("rules") == Price(0.0, 0.0)
        assert prices.price_of("mystery") is None
        assert prices.cost("gpt-4o", 1_000_000, 100_000) == pytest.approx(6.5)
        result = runtime.run(billing(calls), "paid?")
        assert result.status == "completed" and result.budget is None
        assert [s.name for s in result.steps if s.kind == "model"] == [MODEL] * 3
        assert runtime.costs([result.execution_id, "run_unknown"]) == {
            result.execution_id: pytest.approx(3 * CALL_COST),
            "run_unknown": 0.0,
        }
        state = install_console(FastAPI(), runtime, token="t" * 32)
        assert state.price_table is runtime.prices
        summary = state.presenter.run_summary(result)
        detail = state.presenter.run_detail(result)
        assert summary["cost"] == pytest.approx(3 * CALL_COST) == detail["cost"]
        assert [c["model"] for c in detail["model_calls"]] == [MODEL] * 3

    alone = Prices({MODEL: Price(1.0, 2.0)}, defaults=False)
    assert alone.price_of("gpt-4o") is None and len(alone) == 1
    with runtime_for(home, calls, prices=alone) as runtime:
        assert runtime.prices is alone


def test_a_model_without_a_price_has_no_cost_estimate(home: Path) -> None:
    calls = Calls()
    with runtime_for(home, calls, prices=Prices({}, defaults=False)) as runtime:
        result = runtime.run(billing(calls), "paid?", budget=Budget(max_tokens=100_000))
        assert result.status == "completed"
        assert runtime.cost(result.execution_id) is None
        assert runtime.stats().total.cost_usd is None
        assert runtime.stats().total.total_tokens == 4500


# -- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_tokens": 0}, "max_tokens must be above 0"),
        ({"max_tokens": -5}, "max_tokens must be above 0"),
        ({"max_tokens": 1.5}, "max_tokens must be a whole number"),
        ({"max_tokens": "100"}, "max_tokens must be a whole number"),
        ({"max_tokens": True}, "max_tokens must be a whole number"),
        ({"max_model_calls": 0}, "max_model_calls must be above 0"),
        ({"max_model_calls": "3"}, "max_model_calls must be a whole number"),
        ({"max_cost_usd": 0}, "max_cost_usd must be above 0"),
        ({"max_cost_usd": -0.5}, "max_cost_usd must be above 0"),
        ({"max_cost_usd": float("nan")}, "max_cost_usd must be above 0"),
        ({"max_cost_usd": float("inf")}, "max_cost_usd must be above 0"),
        ({"max_cost_usd": "0.5"}, "max_cost_usd must be a number"),
    ],
)
def test_bad_limits_are_refused(limits: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Budget(**limits)


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"my-model": "cheap"}, "the price of 'my-model' must be a Price"),
        ({"my-model": (1.0,)}, "the price of 'my-model' must be a Price"),
        ({"my-model": (-1.0, 2.0)}, "the input price of 'my-model' must be 0 or more"),
        ({"my-model": (1.0, "two")}, "the output price of 'my-model' must be a number"),
        ({"my-model": (1.0, float("nan"))}, "the output price of 'my-model' must be 0 or more"),
        ({"": Price(1.0, 1.0)}, "model names must be non-empty text"),
        ({3: Price(1.0, 1.0)}, "model names must be non-empty text"),
        ([("my-model", Price(1.0, 1.0))], "prices must be a mapping"),
    ],
)
def test_bad_price_tables_are_refused(home: Path, prices: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        AgentRuntime(home, prices=prices, recover=False)
    assert not (home / "frontdesk.db").exists()  # refused before the store was opened
    with pytest.raises(InvalidInput, match=r"Price\.input must be 0 or more"):
        Price(-1.0, 0.0)


def test_bad_budgets_are_refused_with_nothing_stored(home: Path) -> None:
    calls = Calls()
    with pytest.raises(InvalidInput, match=r"budget must be a frontdesk\.Budget"):
        AgentRuntime(home, budget={"max_tokens": 5})  # type: ignore[arg-type]
    unpriced = Agent(name="mystery", model="mystery-model")
    scripted = Agent(name="scripted", model=ScriptedModel([[assistant_message("hi")]]))
    with runtime_for(home, calls) as runtime:
        agent = billing(calls)
        with pytest.raises(InvalidInput, match=r"budget must be a frontdesk\.Budget"):
            runtime.run(agent, "hi", budget={"max_tokens": 5})  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="'mystery-model' is not in the price table"):
            runtime.run(unpriced, "hi", budget=Budget(max_cost_usd=1.0))
        with pytest.raises(InvalidInput, match="agent 'scripted' runs on a model object"):
            runtime.start(scripted, "hi", budget=Budget(max_cost_usd=1.0))
        with pytest.raises(InvalidInput, match=r"budget must be a frontdesk\.Budget"):
            runtime.conversation("c1", agent=agent, budget=3)  # type: ignore[arg-type]
        conv = runtime.conversation("c2", agent=unpriced, budget=Budget(max_cost_usd=1.0))
        with pytest.raises(InvalidInput, match="'mystery-model' is not in the price table"):
            conv.send("hi")
        assert conv.pending_run is None and conv.turns == 0
        with pytest.raises(InvalidInput, match="since must be a Unix time"):
            runtime.stats(since="yesterday")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match=r"until .* must be after since"):
            runtime.stats(since=200.0, until=100.0)
        assert runtime.runs() == [] and calls.made == 0
        done = runtime.run(agent, "hi")
        with pytest.raises(
            InvalidRunState,
            match="only failed runs can be retried, and runs stopped by their budget",
        ):
            runtime.retry(done.execution_id, budget=Budget(max_tokens=10))


# -- reporting --------------------------------------------------------------------------------------


def cli(
    home: Path, *args: str, flow_dir: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = child_env(COLUMNS="200")
    if flow_dir is not None:
        env["CRASHFLOW_DIR"] = str(flow_dir)
    proc = subprocess.run(
        [PYTHON, "-m", "frontdesk", "--home", str(home), *args],
        env=env, capture_output=True, text=True, timeout=WAIT_SECONDS,
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def test_runs_list_show_and_stats_report_tokens_and_cost(home: Path) -> None:
    calls = Calls()
    with runtime_for(home, calls, prices=PRICES) as runtime:
        stopped = runtime.run(billing(calls), "paid?", budget=Budget(max_tokens=2500))
        done = runtime.run(billing(calls), "paid?")
    assert (stopped.status, done.status) == ("budget_exceeded", "completed")

    listed = {r["execution_id"]: r for r in json.loads(cli(home, "runs", "list", "--json").stdout)}
    assert listed[stopped.execution_id]["status"] == "budget_exceeded"
    assert listed[stopped.execution_id]["usage"]["total_tokens"] == 3000
    # The CLI's runtime has the default table, where test-model has no price.
    assert listed[stopped.execution_id]["cost_usd"] is None
    assert listed[stopped.execution_id]["budget"] == {
        "max_tokens": 2500, "max_cost_usd": None, "max_model_calls": None,
    }  # fmt: skip
    assert listed[done.execution_id]["budget"] is None
    table = cli(home, "runs", "list").stdout
    assert "est. cost" in table and "budget_exceeded" in table and "4500" in table

    shown = cli(home, "runs", "show", stopped.execution_id).stdout
    assert "budget_exceeded" in shown
    assert "tokens: 3000 (input 2000, output 1000)" in shown
    assert "budget: max_tokens 2500" in shown
    assert "budget exceeded: max_tokens is 2500, 3000 used; stopped before model call 3" in shown

    report = json.loads(cli(home, "runs", "stats", "--json").stdout)
    assert report["runs"] == 2
    assert report["statuses"] == {"budget_exceeded": 1, "completed": 1}
    total = report["total"]
    assert (total["runs"], total["model_calls"], total["total_tokens"]) == (2, 5, 7500)
    assert total["cost_usd"] is None
    assert report["by_agent"]["billing"]["model_calls"] == 5
    assert report["by_model"][MODEL]["total_tokens"] == 7500
    (day,) = report["by_day"].values()
    assert day["runs"] == 2 and day["input_tokens"] == 5000
    assert json.loads(cli(home, "runs", "stats", "--since", "1h", "--json").stdout)["runs"] == 2
    future = json.loads(cli(home, "runs", "stats", "--since", "2999-01-01", "--json").stdout)
    assert future["runs"] == 0 and future["total"]["model_calls"] == 0
    tables = cli(home, "runs", "stats").stdout
    assert "by agent" in tables and "by model" in tables and "by day" in tables
    bad = cli(home, "runs", "stats", "--since", "last tuesday", check=False)
    assert bad.returncode == 2 and "--since takes a date or time" in bad.stderr

    with AgentRuntime(home, recover=False, prices=PRICES) as runtime:
        stats = runtime.stats()
        assert stats.total.cost_usd == pytest.approx(5 * CALL_COST)
        assert stats.by_model[MODEL].cost_usd == pytest.approx(5 * CALL_COST)
        assert stats.by_agent["billing"].runs == 2
        assert runtime.cost(stopped.execution_id) == pytest.approx(2 * CALL_COST)
