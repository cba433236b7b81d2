"""Token and cost budgets: a run stops cleanly before a model call that its budget forbids.

    from frontdesk import AgentRuntime, Budget

    runtime = AgentRuntime(budget=Budget(max_tokens=50_000, max_cost_usd=0.50))  # default
    result = runtime.run(agent, "I was charged twice", budget=Budget(max_model_calls=8))
    if result.status == "budget_exceeded":
        runtime.retry(result.execution_id, budget=Budget(max_model_calls=16))

Before each model call that is not replayed from the journal, the run's model calls, tokens
and estimated cost so far (for a conversation turn, with the earlier turns') are compared with
its limits; once one is reached, no further call is made and the run ends ``budget_exceeded``
with a ``budget_exceeded`` event naming the limit, its value and the amount used. Its journal
is intact, so a retry with a raised budget replays what was done and goes on from there.

A run stores its budget (a :class:`BudgetPlan`: the limits, the prices of the models its agents
run on, and what earlier turns of its conversation used), so whichever process resumes it
enforces the same budget with the same prices.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from numbers import Real
from typing import TYPE_CHECKING, Any

from agents import Agent

from ._prices import Price, Prices
from .engine._agents import iter_graph
from .errors import InvalidInput, InvalidRunState
from .store import RunRow, Store, UsageRow

if TYPE_CHECKING:
    from .models._select import ModelSelector

LIMITS = ("max_model_calls", "max_tokens", "max_cost_usd")
"""The limits of a :class:`Budget`, in the order they are checked."""


def _whole(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"Budget.{name} must be a whole number above 0, got {value!r}")
    if value <= 0:
        raise InvalidInput(
            f"Budget.{name} must be above 0, got {value} (leave it out for no limit)"
        )
    return value


def _dollars(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidInput(f"Budget.{name} must be a number of US dollars, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise InvalidInput(
            f"Budget.{name} must be above 0 US dollars, got {value!r} (leave it out for no limit)"
        )
    return number


@dataclass(frozen=True)
class Budget:
    """Limits on what one run (or one conversation, over all its turns) may use.

    Every limit is optional; ``Budget()`` has none, which lifts a runtime's default budget
    for a run. A limit that is not above 0, or not a number, raises :class:`InvalidInput`.
    """

    max_tokens: int | None = None
    """Tokens (input and output) over every model call."""
    max_cost_usd: float | None = None
    """Estimated US dollars over every model call, priced by the runtime's price table."""
    max_model_calls: int | None = None
    """Model calls."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_tokens", _whole(self.max_tokens, "max_tokens"))
        object.__setattr__(self, "max_cost_usd", _dollars(self.max_cost_usd, "max_cost_usd"))
        object.__setattr__(self, "max_model_calls", _whole(self.max_model_calls, "max_model_calls"))

    @property
    def limited(self) -> bool:
        """Whether the budget sets any limit."""
        return any(getattr(self, name) is not None for name in LIMITS)

    def to_dict(self) -> dict[str, Any]:
        """The limits as a plain dict (None for no limit)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Budget:
        """A budget from :meth:`to_dict` output."""
        return cls(**{name: data.get(name) for name in LIMITS})

    def describe(self) -> str:
        """The limits in words, e.g. ``max_tokens 1000, max_cost_usd $0.5``."""
        parts = [
            f"{name} {format_amount(name, value)}"
            for name in LIMITS
            if (value := getattr(self, name)) is not None
        ]
        return ", ".join(parts) or "no limits"


def require_budget(value: Any, what: str = "budget") -> Budget | None:
    """``value`` if it is a :class:`Budget` or None; :class:`InvalidInput` otherwise."""
    if value is not None and not isinstance(value, Budget):
        raise InvalidInput(
            f"{what} must be a frontdesk.Budget(max_tokens=..., max_cost_usd=..., "
            f"max_model_calls=...), got {value!r}"
        )
    return value


def format_amount(limit: str, value: float | None) -> str:
    """An amount of a limit as people read it: dollars for cost, a count otherwise."""
    if value is None:
        return "unknown"
    if limit == "max_cost_usd":
        return "$" + (f"{value:.6f}".rstrip("0").rstrip(".") or "0")
    return str(int(value))


@dataclass(frozen=True)
class Spent:
    """What model calls used: calls, tokens and estimated cost (None: a model had no price)."""

    model_calls: int = 0
    """Model calls made."""
    tokens: int = 0
    """Tokens (input and output) they used."""
    cost_usd: float | None = 0.0
    """Their estimated cost in US dollars; None when one ran on a model without a price."""


class BudgetStop(Exception):
    """Raised before a model call that the run's budget forbids; the run settles
    ``budget_exceeded``. Not an error of the caller's: the engine turns it into the outcome."""

    def __init__(self, limit: str, value: float, used: float, call: int) -> None:
        self.limit = limit
        self.value = value
        self.used = used
        self.call = call
        self.reason = (
            f"{limit} is {format_amount(limit, value)} and {format_amount(limit, used)} "
            f"{'were' if limit == 'max_model_calls' else 'was'} used"
        )
        super().__init__(
            f"budget exceeded: {self.reason}; the run stopped before model call {call}"
        )


@dataclass(frozen=True)
class BudgetPlan:
    """A run's budget as stored with it: the limits, the prices of the models its agents run
    on (as they were when it started), and what earlier turns of its conversation used."""

    budget: Budget
    """The limits."""
    prices: dict[str, Price | None] = field(default_factory=dict)
    """The run's models by name, each with its price (None: not in the price table)."""
    before: Spent = Spent()
    """What earlier turns of the run's conversation used (nothing for a lone run)."""

    def to_json(self) -> str:
        """The plan as stored in ``runs.budget_json``."""
        return json.dumps(
            {
                "budget": self.budget.to_dict(),
                "prices": {
                    name: None if price is None else [price.input, price.output]
                    for name, price in sorted(self.prices.items())
                },
                "before": asdict(self.before),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> BudgetPlan:
        """A plan from :meth:`to_json` output."""
        data = json.loads(text)
        prices = {
            name: None if value is None else Price(*value)
            for name, value in (data.get("prices") or {}).items()
        }
        return cls(Budget.from_dict(data["budget"]), prices, Spent(**(data.get("before") or {})))

    def with_budget(self, budget: Budget, fallback: Prices) -> BudgetPlan:
        """This plan with other limits; models it has no price for are looked up in
        ``fallback`` (and must all have one if the new budget limits cost)."""
        prices = {
            name: price if price is not None else fallback.price_of(name)
            for name, price in self.prices.items()
        }
        plan = replace(self, budget=budget, prices=prices)
        plan.require_prices()
        return plan

    def require_prices(self, agents: Mapping[str, str | None] | None = None) -> None:
        """:class:`InvalidInput` if the budget limits cost but a model has no price."""
        if self.budget.max_cost_usd is None:
            return
        for agent, model in (agents or {}).items():
            if model is None:
                raise InvalidInput(
                    f"max_cost_usd needs a price for every model the run may call, but agent "
                    f"{agent!r} runs on a model object without a model name to price it by; "
                    "give the agent a model name, or leave max_cost_usd out"
                )
        unpriced = sorted(name for name, price in self.prices.items() if price is None)
        if unpriced:
            raise InvalidInput(
                f"max_cost_usd needs a price for every model the run may call, and "
                f"{unpriced[0]!r} is not in the price table: add it, e.g. "
                f"AgentRuntime(prices={{{unpriced[0]!r}: Price(input=..., output=...)}}) "
                "(US dollars per million tokens)"
            )
        if self.before.cost_usd is None:
            raise InvalidInput(
                "max_cost_usd cannot count the conversation's earlier turns: one ran on a "
                "model that is not in the price table; add its price to AgentRuntime(prices=...)"
            )


class BudgetMeter:
    """Counts a run's model calls against its :class:`BudgetPlan` as it is driven."""

    def __init__(self, plan: BudgetPlan) -> None:
        self.plan = plan
        self.cost: float | None = 0.0
        """Estimated dollars of this run's calls so far; None once one had no price."""
        self.unpriced: str | None = None

    def add(self, model: str | None, input_tokens: int, output_tokens: int) -> None:
        """Count one model call's tokens on ``model`` (replayed or live)."""
        if self.cost is None:
            return
        price = self.plan.prices.get(model) if model is not None else None
        if price is None:
            self.cost, self.unpriced = None, model or "a model without a name"
            return
        self.cost += price.cost(input_tokens, output_tokens)

    def check(self, calls_made: int, tokens: int) -> None:
        """Raise :class:`BudgetStop` if a limit is reached, before model call
        ``calls_made + 1`` of a run that used ``tokens`` so far."""
        budget, before = self.plan.budget, self.plan.before
        call = calls_made + 1
        if budget.max_model_calls is not None:
            used_calls = before.model_calls + calls_made
            if used_calls >= budget.max_model_calls:
                raise BudgetStop("max_model_calls", budget.max_model_calls, used_calls, call)
        if budget.max_tokens is not None:
            used_tokens = before.tokens + tokens
            if used_tokens >= budget.max_tokens:
                raise BudgetStop("max_tokens", budget.max_tokens, used_tokens, call)
        if budget.max_cost_usd is not None:
            if self.cost is None or before.cost_usd is None:
                raise InvalidInput(
                    f"max_cost_usd cannot be enforced: {self.unpriced or 'an earlier turn'} "
                    "has no price in the run's price table"
                )
            used_cost = round(before.cost_usd + self.cost, 12)
            if used_cost >= budget.max_cost_usd:
                raise BudgetStop("max_cost_usd", budget.max_cost_usd, used_cost, call)


# -- which model each agent runs on ------------------------------------------------------------


def _instance_name(model: Any) -> str | None:
    name = getattr(model, "model", None)
    return name if isinstance(name, str) and name else None


def model_names(root: Agent[Any], selector: ModelSelector) -> dict[str, str | None]:
    """The model name each agent reachable from ``root`` runs on under ``selector`` (None
    for a model object without a name): the override's, else the agent's own."""
    override = selector.override
    if selector.is_rules:
        return {agent.name: "rules" for agent in iter_graph(root)}
    if isinstance(override, str):
        return {agent.name: override for agent in iter_graph(root)}
    if override is not None:
        return {agent.name: _instance_name(override) for agent in iter_graph(root)}
    names: dict[str, str | None] = {}
    for agent in iter_graph(root):
        model = agent.model
        if isinstance(model, str) and model:
            names[agent.name] = model
        elif not model:
            from agents.models import get_default_model

            names[agent.name] = get_default_model()
        else:
            names[agent.name] = _instance_name(model)
    return names


def plan_budget(
    budget: Budget | None,
    agents: Mapping[str, str | None],
    prices: Prices,
    before: Spent = Spent(),
) -> BudgetPlan | None:
    """The plan stored with a run whose agents run on ``agents`` (agent -> model name), or
    None without a budget. :class:`InvalidInput` if the budget limits cost and a model has
    no price."""
    if budget is None:
        return None
    models = {model for model in agents.values() if model is not None}
    plan = BudgetPlan(budget, {name: prices.price_of(name) for name in models}, before)
    plan.require_prices(agents)
    return plan


def spent(usages: Iterable[tuple[str | None, int, int, int, int]], prices: Prices) -> Spent:
    """What calls used, from ``(model, calls, input_tokens, output_tokens, total_tokens)``
    rows priced by ``prices``."""
    calls = tokens = 0
    cost: float | None = 0.0
    for model, n, input_tokens, output_tokens, total_tokens in usages:
        calls += n
        tokens += total_tokens
        call_cost = prices.cost(model, input_tokens, output_tokens)
        cost = None if cost is None or call_cost is None else cost + call_cost
    return Spent(calls, tokens, cost)


def _spent_rows(rows: Iterable[UsageRow]) -> list[tuple[str | None, int, int, int, int]]:
    return [(r.model, r.calls, r.input_tokens, r.output_tokens, r.total_tokens) for r in rows]


def stop_now(plan: BudgetPlan, rows: Iterable[UsageRow]) -> BudgetStop | None:
    """Why a run that made the calls in ``rows`` may make no further call under ``plan``."""
    meter = BudgetMeter(plan)
    calls = tokens = 0
    for model, n, input_tokens, output_tokens, total_tokens in _spent_rows(rows):
        meter.add(model, input_tokens, output_tokens)
        calls, tokens = calls + n, tokens + total_tokens
    try:
        meter.check(calls, tokens)
    except BudgetStop as stop:
        return stop
    return None


def run_plan_json(
    budget: Budget | None,
    root: Agent[Any],
    selector: ModelSelector,
    prices: Prices,
    before: Spent = Spent(),
) -> str | None:
    """The budget to store with a new run from ``root`` (None: no limits)."""
    if budget is None or not budget.limited:
        return None
    plan = plan_budget(budget, model_names(root, selector), prices, before)
    return plan.to_json() if plan is not None else None


def turn_plan_json(
    store: Store,
    conversation_id: str,
    budget: Budget | None,
    root: Agent[Any],
    selector: ModelSelector,
    prices: Prices,
) -> str | None:
    """The budget to store with the next turn of a conversation: ``budget`` counted over
    every turn, the earlier ones included."""
    if budget is None or not budget.limited:
        return None
    rows = _spent_rows(store.conversation_usage(conversation_id))
    return run_plan_json(budget, root, selector, prices, spent(rows, prices))


def retry_plan_json(
    store: Store,
    row: RunRow,
    budget: Budget | None,
    prices: Prices,
    models: Callable[[], dict[str, str | None]],
) -> str | None:
    """The budget a retried run gets: ``budget`` if given (priced like the run's, else by
    ``prices`` for the models ``models()`` names), else its own, unchanged (None).

    :class:`InvalidRunState` for a ``budget_exceeded`` run that the budget would stop again
    at once; nothing is changed then."""
    plan = BudgetPlan.from_json(row.budget_json) if row.budget_json is not None else None
    if budget is not None:
        if plan is not None:
            plan = plan.with_budget(budget, prices)
        else:
            agents = models()
            if not agents and budget.max_cost_usd is not None:
                raise InvalidInput(
                    f"max_cost_usd cannot be priced for run {row.execution_id} here: this "
                    "process cannot find its agents to know their models"
                )
            plan = plan_budget(budget, agents, prices)
    if row.status == "budget_exceeded" and plan is not None:
        stop = stop_now(plan, store.run_usage([row.execution_id]))
        if stop is not None:
            raise InvalidRunState(
                f"run {row.execution_id} would stop again at once, {stop.reason}: retry it "
                f"with a raised budget, e.g. runtime.retry({row.execution_id!r}, "
                f"budget=Budget({stop.limit}=...)); nothing changed"
            )
    return plan.to_json() if budget is not None and plan is not None else None


def find_cause(exc: BaseException, kind: type[BudgetStop]) -> BudgetStop | None:
    """The :class:`BudgetStop` that ``exc`` is or wraps (the SDK may wrap a model's error)."""
    seen: BaseException | None = exc
    for _ in range(20):  # a chain is short; never follow a cycle forever
        if seen is None:
            return None
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


__all__ = [
    "LIMITS",
    "Budget",
    "BudgetMeter",
    "BudgetPlan",
    "BudgetStop",
    "Spent",
    "find_cause",
    "format_amount",
    "model_names",
    "plan_budget",
    "require_budget",
    "retry_plan_json",
    "run_plan_json",
    "spent",
    "stop_now",
    "turn_plan_json",
]
