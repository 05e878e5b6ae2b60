"""slo: the service is not burning its error budget too fast right now (Google SRE workbook,
multi-window multi-burn-rate): deny when, for any window pair, the burn rate (error ratio over
the budget, 1 - objective) is above its factor over both the long and the short window.
Defaults: 14.4x over 1h and 5m, 6x over 6h and 30m. With `requests:`, fewer than
`min-requests` over the first long window is an error: too little traffic judges nothing.
Each ratio must be a finite value: no data or NaN (no traffic) is an error, never a pass.
"""

from __future__ import annotations

import os

from pydantic import Field, field_validator

from pipeline_kit.analysis import release_values
from pipeline_kit.config import Config, parse_duration
from pipeline_kit.config.base import ConfigModel
from pipeline_kit.gates.interface import Gate, Options, Outcome, PromotionContext, deferred, denied, error, passed
from pipeline_kit.gates.metric import provider_problem
from pipeline_kit.metrics import MetricProvider, open_provider
from pipeline_kit.queries import render, template_problem


class BurnWindow(ConfigModel):
    long: str
    short: str
    burn_rate: float = Field(gt=0, allow_inf_nan=False)

    @field_validator("long", "short")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


WORKBOOK = (BurnWindow(long="1h", short="5m", burn_rate=14.4), BurnWindow(long="6h", short="30m", burn_rate=6.0))


class SloOptions(Options):
    provider: str
    objective: float = Field(gt=0, lt=1, allow_inf_nan=False)  # e.g. 0.999
    error_ratio: str = Field(min_length=1)  # bad/total over {{ window }}
    requests: str | None = None  # requests over {{ window }}, for the traffic guard
    min_requests: float = Field(default=1, ge=0, allow_inf_nan=False)
    windows: list[BurnWindow] = Field(default_factory=lambda: list(WORKBOOK), min_length=1)
    environment: str | None = None  # whose budget; default this environment

    @field_validator("error_ratio", "requests")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        problem = template_problem(value) if value else None
        if problem:
            raise ValueError(problem)
        return value


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.3g}%"


class SloGate(Gate):
    name = "slo"
    options_model = SloOptions
    options: SloOptions

    def config_problem(self, config: Config) -> str | None:
        return provider_problem(config, self.options.provider)

    def evaluate(self, context: PromotionContext) -> Outcome:
        options = self.options
        if context.projected:
            return deferred(f"burn rate of the {_percent(options.objective)} objective at promotion time")
        provider = open_provider(context.config, options.provider, os.environ)
        values = release_values(context.release, options.environment or context.environment, "5m")
        budget = 1 - options.objective
        if options.requests:
            guard = self._measure(provider, options.requests, values, options.windows[0].long, context)
            if isinstance(guard, str):
                return error(f"requests over {options.windows[0].long}: {guard}")
            if guard < options.min_requests:
                return error(
                    f"too little traffic to judge: {guard:.6g} requests over {options.windows[0].long} "
                    f"(min-requests {options.min_requests:g})"
                )
        parts, burning = [], []
        for pair in options.windows:
            rates = []
            for window in (pair.long, pair.short):
                ratio = self._measure(provider, options.error_ratio, values, window, context)
                if isinstance(ratio, str):
                    return error(f"error ratio over {window}: {ratio}")
                rates.append(ratio / budget)
            shown = f"{rates[0]:.3g}x/{rates[1]:.3g}x of {pair.burn_rate:g}x over {pair.long}/{pair.short}"
            parts.append(shown)
            if rates[0] > pair.burn_rate and rates[1] > pair.burn_rate:
                burning.append(shown)
        summary = f"budget {_percent(budget)} ({_percent(options.objective)} objective); burn " + "; ".join(parts)
        if burning:
            return denied(f"burning the error budget too fast: {'; '.join(burning)} ({summary})")
        return passed(summary)

    def _measure(
        self, provider: MetricProvider, template: str, values: dict[str, str], window: str, context: PromotionContext
    ) -> float | str:
        try:
            query = render(template, {**values, "window": window})
        except ValueError as exc:
            return str(exc)
        measurement = provider.measure(query, context.now)
        if measurement.status != "ok" or measurement.value is None:
            return f"{measurement.status}: {measurement.detail}"
        return measurement.value
