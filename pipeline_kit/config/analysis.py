"""What measures a release after its deploy: the metric providers (`metrics:`) and an
environment's `analysis:` (its checks, their bounds and comparisons) and `on-failure:`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from pipeline_kit.config.base import ConfigModel, SentVariable, parse_duration, sent_safely
from pipeline_kit.queries import template_problem

Finite = Annotated[float, Field(allow_inf_nan=False, strict=False)]
CheckName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]


class MetricProviderConfig(ConfigModel):
    """A metrics backend, named under `metrics:`; the metric and slo gates and the analysis after
    a deploy query it. Secrets are named, never written: header values and the bearer token come
    from environment variables."""

    type: Literal["prometheus"]
    url: str = Field(pattern=r"^https?://[^\s]+$")
    headers: dict[str, SentVariable] = Field(default_factory=dict)  # header name -> variable with its value
    token_variable: SentVariable | None = None  # bearer token
    ca_file: str | None = None  # PEM bundle to verify an https server with
    # seconds per query (sent to the server as its own timeout too): a number, finite, at most 5 min
    timeout: float = Field(default=10.0, gt=0, le=300, strict=True, allow_inf_nan=False)

    @model_validator(mode="after")
    def _secrets_sent_safely(self) -> MetricProviderConfig:
        for secret in (self.token_variable, *self.headers.values()):
            sent_safely(self.url, secret)
        return self


class Comparison(ConfigModel):
    """Judge the canary against the stable release on the same query over the step, as Kayenta's
    judge does: a one-sided Mann-Whitney U test at `confidence`, and the ratio of the medians
    beyond `tolerance`; both must hold to fail. Fewer than `min-samples` values on either side
    is inconclusive (Kayenta's advice is 50 or more)."""

    direction: Literal["higher-is-worse", "lower-is-worse"] = "higher-is-worse"
    tolerance: float = Field(default=1.1, ge=1, allow_inf_nan=False)  # allowed ratio of medians
    confidence: float = Field(default=0.98, gt=0.5, lt=1, allow_inf_nan=False)
    min_samples: int = Field(default=10, ge=3, le=100_000, strict=True)
    resolution: str = "10s"  # the step of the range query the samples come from

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: str) -> str:
        parse_duration(value)
        return value


class MetricCheck(ConfigModel):
    """One measured query: passes within its bounds (every check has max or min). No data, NaN or
    an infinity is inconclusive, a failed query an error: neither is ever a pass. With `compare`,
    the query is also judged against the stable release at the end of each rollout step."""

    name: CheckName
    query: str = Field(min_length=1, max_length=10_000)
    max: Finite | None = None
    min: Finite | None = None
    compare: Comparison | None = None

    @field_validator("query")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        problem = template_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _bounded(self) -> MetricCheck:
        if self.max is None and self.min is None:
            why = "a first rollout has no stable release to compare with" if self.compare else "it would judge nothing"
            raise ValueError(f"check {self.name}: give max or min ({why})")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"check {self.name}: min {self.min} is above max {self.max}")
        return self


class AnalysisConfig(ConfigModel):
    """Measure the release after its deploy succeeded: every `interval`, every check, `count`
    times. More than `failure-limit` failed or `inconclusive-limit` inconclusive measurements, or
    more than `consecutive-error-limit` query errors in a row, fail the analysis."""

    provider: str
    interval: str = "1m"
    count: int = Field(default=5, ge=1, le=1000, strict=True)
    failure_limit: int = Field(default=0, ge=0, strict=True)
    inconclusive_limit: int = Field(default=0, ge=0, strict=True)
    consecutive_error_limit: int = Field(default=4, ge=0, strict=True)
    checks: list[MetricCheck] = Field(min_length=1)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        interval = parse_duration(value)
        if not timedelta(seconds=1) <= interval <= timedelta(hours=1):
            raise ValueError("interval: between 1s and 1h")
        return value

    @field_validator("checks")
    @classmethod
    def _unique(cls, value: list[MetricCheck]) -> list[MetricCheck]:
        names = [check.name for check in value]
        if len(set(names)) != len(names):
            raise ValueError("check names must be unique")
        return value


class OnFailureConfig(ConfigModel):
    """What a failed analysis does besides failing the promotion."""

    rollback: bool = True  # back to the previous good release, signed, as `pipeline-kit rollback`
    kill_switches: list[CheckName] = Field(default_factory=list)  # flags turned off first
