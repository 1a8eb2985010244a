"""What model tokens cost: the deployment's price table (``MODEL_PRICES``).

JSON, inline or ``@path``: ``{"gpt-4o-mini": {"prompt": 0.15, "completion": 0.60}}``, in US
dollars per million tokens. A model not in the table costs 0 (and says so in the metrics:
its tokens are still counted).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jobkit.errors import ConfigError

_PER = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    prompt_per_million: float
    completion_per_million: float


@dataclass(frozen=True, slots=True)
class PriceTable:
    prices: Mapping[str, Price] = field(default_factory=dict)

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self.prices.get(model)
        if price is None:
            return 0.0
        return (
            prompt_tokens * price.prompt_per_million
            + completion_tokens * price.completion_per_million
        ) / _PER

    @classmethod
    def parse(cls, raw: str) -> PriceTable:
        """From ``MODEL_PRICES``: JSON, or ``@path`` to a JSON file; empty means no prices."""
        text = raw.strip()
        if not text:
            return cls()
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"MODEL_PRICES: cannot read {text[1:]}: {exc}") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError("MODEL_PRICES must be JSON (or @path to a JSON file)") from None
        if not isinstance(doc, dict):
            raise ConfigError("MODEL_PRICES must map model names to prices")
        prices: dict[str, Price] = {}
        for model, entry in doc.items():
            if not isinstance(entry, dict) or not all(
                isinstance(entry.get(k), int | float) and entry[k] >= 0
                for k in ("prompt", "completion")
            ):
                raise ConfigError(
                    f"MODEL_PRICES[{model!r}] needs non-negative numbers 'prompt' and "
                    "'completion' (US dollars per million tokens)"
                )
            prices[str(model)] = Price(float(entry["prompt"]), float(entry["completion"]))
        return cls(prices)
