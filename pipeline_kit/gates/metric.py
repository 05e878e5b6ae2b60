"""metric: measured checks at the moment of promotion, e.g. this release's error ratio in the
environment before this one.

Every check must measure a finite value within its bounds. A failed bound denies; no data, NaN,
an infinity (inconclusive) or a failed query is an error, which denies too: missing data is never
a pass. `{{ environment }}` is the environment measured: the one this follows (`after:`), else
this one, or `environment:`.
"""

from __future__ import annotations

import os
from datetime import timedelta

from pydantic import Field, field_validator

from pipeline_kit.analysis import measure, release_values
from pipeline_kit.config import Config, MetricCheck, parse_duration
from pipeline_kit.gates.interface import Gate, Options, Outcome, PromotionContext, deferred, denied, error, passed
from pipeline_kit.metrics import open_provider


class MetricOptions(Options):
    provider: str
    checks: list[MetricCheck] = Field(min_length=1)
    interval: str = "5m"  # the value of {{ interval }}: the window the queries look back over
    environment: str | None = None  # whose measurements; default `after:`, else this environment

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        if parse_duration(value) > timedelta(days=31):
            raise ValueError("interval: at most 31d")
        return value


def provider_problem(config: Config, provider: str) -> str | None:
    if provider not in config.metrics:
        known = ", ".join(sorted(config.metrics)) or "none configured"
        return f"provider {provider!r} is not an entry of metrics: ({known})"
    return None


class MetricGate(Gate):
    name = "metric"
    options_model = MetricOptions
    options: MetricOptions

    def config_problem(self, config: Config) -> str | None:
        return provider_problem(config, self.options.provider)

    def evaluate(self, context: PromotionContext) -> Outcome:
        if context.projected:
            return deferred(f"measures {', '.join(c.name for c in self.options.checks)} at promotion time")
        provider = open_provider(context.config, self.options.provider, os.environ)
        measured = self.options.environment or context.config.environments[context.environment].after
        values = release_values(context.release, measured or context.environment, self.options.interval)
        results = [measure(provider, check, values, context.now) for check in self.options.checks]
        evidence = {"measurements": [r.as_dict() for r in results]}
        lines = "; ".join(f"{r.check} {r.detail}" for r in results)
        if any(r.verdict == "failed" for r in results):
            return denied(lines, **evidence)
        if any(r.verdict in ("inconclusive", "error") for r in results):
            return error(lines, **evidence)
        return passed(lines, **evidence)
