"""Estimated cost of model calls, from a per-model price table.

Prices are US dollars per million tokens, input and output, as published by OpenAI for its
models' standard tier. A model is priced by its longest matching name prefix, so dated
snapshots (``gpt-4o-2024-08-06``) are priced as their family. The offline rules baseline
costs nothing; a model missing from the table has no estimate (``None``), never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..models.rules import RULES_LABEL


@dataclass(frozen=True)
class Price:
    """What a million tokens cost on one model."""

    input: float
    """US dollars per million input tokens."""
    output: float
    """US dollars per million output tokens."""


PRICES: Mapping[str, Price] = {
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
"""The default price table: model name prefix -> :class:`Price`."""

FREE_MODELS = frozenset({"rules", RULES_LABEL})
"""Models that cost nothing: the offline rules baseline."""


def price_of(model: str | None, prices: Mapping[str, Price] = PRICES) -> Price | None:
    """The price of ``model`` (longest matching prefix), or None if it is not in the table."""
    if not model:
        return None
    if model in FREE_MODELS:
        return Price(0.0, 0.0)
    name = model.rsplit("/", 1)[-1].lower()  # "openai/gpt-4o" as LiteLLM names it
    matches = [prefix for prefix in prices if name.startswith(prefix)]
    return prices[max(matches, key=len)] if matches else None


def estimate_cost(
    model: str | None,
    input_tokens: int,
    output_tokens: int,
    prices: Mapping[str, Price] = PRICES,
) -> float | None:
    """Estimated US dollars for the tokens on ``model``; None when its price is unknown."""
    price = price_of(model, prices)
    if price is None:
        return None
    return (input_tokens * price.input + output_tokens * price.output) / 1_000_000


def add_costs(costs: list[float | None]) -> float | None:
    """The sum of estimates; None if any part has no estimate (a partial sum would mislead)."""
    total = 0.0
    for cost in costs:
        if cost is None:
            return None
        total += cost
    return total
