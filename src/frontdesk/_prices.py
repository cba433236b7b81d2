"""Model prices: what a million tokens cost on each model, for cost estimates and budgets.

One table serves everything that speaks of cost: ``max_cost_usd`` budgets, ``frontdesk runs``
(``list``, ``show``, ``stats``) and the console. Prices are US dollars per million tokens,
input and output, as published by OpenAI for its models' standard tier. A model is priced by
its longest matching name prefix, so dated snapshots (``gpt-4o-2024-08-06``) are priced as
their family and ``openai/gpt-4o`` (as LiteLLM names it) as ``gpt-4o``. The offline rules
baseline costs nothing; a model missing from the table has no estimate (``None``), never a
guess.

    from frontdesk import AgentRuntime, Price

    # Extend the defaults (and override any of them):
    runtime = AgentRuntime(prices={"my-finetune": Price(input=3.0, output=12.0)})
    # Or replace them: AgentRuntime(prices=Prices({...}, defaults=False))
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from numbers import Real
from types import MappingProxyType
from typing import Any

from .errors import InvalidInput
from .models._rules_conversation import RULES_LABEL


def _dollars(value: Any, what: str) -> float:
    """``value`` as a finite, non-negative number of dollars; :class:`InvalidInput` if not."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidInput(f"{what} must be a number of US dollars, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise InvalidInput(f"{what} must be 0 or more US dollars, got {value!r}")
    return number


@dataclass(frozen=True)
class Price:
    """What a million tokens cost on one model, in US dollars."""

    input: float
    """US dollars per million input tokens."""
    output: float
    """US dollars per million output tokens."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "input", _dollars(self.input, "Price.input"))
        object.__setattr__(self, "output", _dollars(self.output, "Price.output"))

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """US dollars for ``input_tokens`` and ``output_tokens``."""
        return (input_tokens * self.input + output_tokens * self.output) / 1_000_000


DEFAULT_PRICES: Mapping[str, Price] = MappingProxyType(
    {
        "gpt-5-nano": Price(0.05, 0.40),
        "gpt-5-mini": Price(0.25, 2.00),
        "gpt-5": Price(1.25, 10.00),
        "gpt-4.1-nano": Price(0.10, 0.40),
        "gpt-4.1-mini": Price(0.40, 1.60),
        "gpt-4.1": Price(2.00, 8.00),
        "gpt-4o-mini": Price(0.15, 0.60),
        "gpt-4o": Price(2.50, 10.00),
        "gpt-4-turbo": Price(10.00, 30.00),
        "gpt-3.5-turbo": Price(0.50, 1.50),
        "o4-mini": Price(1.10, 4.40),
        "o3-mini": Price(1.10, 4.40),
        "o3": Price(2.00, 8.00),
        "o1-mini": Price(1.10, 4.40),
        "o1": Price(15.00, 60.00),
    }
)
"""The default price table: model name prefix -> :class:`Price`."""

FREE_MODELS = frozenset({"rules", RULES_LABEL})
"""Models that cost nothing: the offline rules baseline (by its override name or label)."""

_FREE = Price(0.0, 0.0)


def _price(model: str, value: Any) -> Price:
    if isinstance(value, Price):
        return value
    if isinstance(value, tuple | list) and len(value) == 2:
        return Price(
            _dollars(value[0], f"the input price of {model!r}"),
            _dollars(value[1], f"the output price of {model!r}"),
        )
    raise InvalidInput(
        f"the price of {model!r} must be a Price(input=..., output=...) or an (input, output) "
        f"pair of US dollars per million tokens, got {value!r}"
    )


class Prices(Mapping[str, Price]):
    """A per-model price table: model name prefix -> :class:`Price`.

    ``table`` maps model names (or name prefixes) to a :class:`Price` or an ``(input,
    output)`` pair of US dollars per million tokens. With ``defaults`` (the default) it
    extends and overrides :data:`DEFAULT_PRICES`; without, it is the whole table. A bad entry
    raises :class:`InvalidInput`.
    """

    def __init__(self, table: Mapping[str, Any] | None = None, *, defaults: bool = True) -> None:
        if table is not None and not isinstance(table, Mapping):
            raise InvalidInput(f"prices must be a mapping of model name to Price, got {table!r}")
        merged: dict[str, Price] = dict(DEFAULT_PRICES) if defaults else {}
        for model, value in (table or {}).items():
            if not isinstance(model, str) or not model.strip():
                raise InvalidInput(f"a price table's model names must be non-empty text: {model!r}")
            merged[model.strip().lower()] = _price(model, value)
        self._table = merged

    @classmethod
    def of(cls, prices: Mapping[str, Any] | None) -> Prices:
        """``prices`` as a table: a :class:`Prices` as it is, a mapping over the defaults,
        None for the defaults alone."""
        return prices if isinstance(prices, Prices) else cls(prices)

    def __getitem__(self, model: str) -> Price:
        return self._table[model]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"Prices({self._table!r}, defaults=False)"

    def price_of(self, model: str | None) -> Price | None:
        """The price of ``model`` (its longest matching prefix), or None if it has none."""
        if not model:
            return None
        if model in FREE_MODELS:
            return _FREE
        name = model.rsplit("/", 1)[-1].lower()
        matches = [prefix for prefix in self._table if name.startswith(prefix)]
        return self._table[max(matches, key=len)] if matches else None

    def cost(self, model: str | None, input_tokens: int, output_tokens: int) -> float | None:
        """Estimated US dollars for the tokens on ``model``; None when it has no price."""
        price = self.price_of(model)
        return price.cost(input_tokens, output_tokens) if price is not None else None


def estimate_cost(
    model: str | None,
    input_tokens: int,
    output_tokens: int,
    prices: Mapping[str, Price] = DEFAULT_PRICES,
) -> float | None:
    """Estimated US dollars for the tokens on ``model`` under ``prices``; None when ``model``
    has no price there."""
    table = prices if isinstance(prices, Prices) else Prices(prices, defaults=False)
    return table.cost(model, input_tokens, output_tokens)


def add_costs(costs: list[float | None]) -> float | None:
    """The sum of estimates; None if any part has no estimate (a partial sum would mislead)."""
    total = 0.0
    for cost in costs:
        if cost is None:
            return None
        total += cost
    return total


__all__ = ["DEFAULT_PRICES", "FREE_MODELS", "Price", "Prices", "add_costs", "estimate_cost"]
