"""Metric checks and the analysis after a deploy: measure, judge, count, decide.

A check passes only on a finite value within its bounds. No data, NaN or an infinity is
*inconclusive*, a failed query an *error*: both are counted, neither is ever a pass. An analysis
measures every check every `interval`, `count` times, the first time one interval after the
deploy (a release needs time to serve traffic), and stops at the first measurement that breaks a
limit: more than `failure-limit` failed, more than `inconclusive-limit` inconclusive, more than
`consecutive-error-limit` errors in a row for one check. It passes only if it ran to the end and
every check measured a passing value at least once (a run of nothing but errors never passes).
The queries name the release through placeholders: an analysis belongs to one release.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from pipeline_kit._internal.text import counted
from pipeline_kit.config import AnalysisConfig, MetricCheck, parse_duration
from pipeline_kit.metrics import Measurement, MetricProvider
from pipeline_kit.models import Release
from pipeline_kit.queries import promql_duration, render

Verdict = Literal["passed", "failed", "inconclusive", "error"]
NO_BASELINE = "no stable release to compare with (a first rollout)"


@dataclass(frozen=True)
class Result:
    """One check, measured once."""

    check: str
    time: datetime
    verdict: Verdict
    value: float | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "time": self.time.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _number(value: float) -> str:
    return f"{value:.6g}"


def judge(check: MetricCheck, measurement: Measurement) -> tuple[Verdict, str]:
    """A measurement against the check's bounds, and the margin in words."""
    if measurement.status == "inconclusive":
        return "inconclusive", f"inconclusive: {measurement.detail}"
    if measurement.status == "error" or measurement.value is None:
        return "error", f"query failed: {measurement.detail}"
    value = measurement.value
    if check.max is not None and value > check.max:
        return "failed", f"{_number(value)} above max {_number(check.max)}"
    if check.min is not None and value < check.min:
        return "failed", f"{_number(value)} below min {_number(check.min)}"
    bounds = [
        f"max {_number(check.max)}" if check.max is not None else "",
        f"min {_number(check.min)}" if check.min is not None else "",
    ]
    return "passed", f"{_number(value)} within {' and '.join(b for b in bounds if b)}"


def release_values(release: Release, environment: str, interval: str) -> dict[str, str]:
    """The placeholder values a query about `release` in `environment` is filled with."""
    return {
        "release": release.id,
        "digest": f"sha256:{release.subjects[0].sha256}",
        "environment": environment,
        "interval": interval,
    }


def measure(provider: MetricProvider, check: MetricCheck, values: Mapping[str, str], at: datetime) -> Result:
    try:
        query = render(check.query, values)
    except ValueError as exc:
        return Result(check.name, at, "error", None, f"query failed: {exc}")
    measurement = provider.measure(query, at)
    verdict, detail = judge(check, measurement)
    return Result(check.name, at, verdict, measurement.value, detail)


def compare(
    provider: MetricProvider,
    check: MetricCheck,
    values: Mapping[str, str],
    baseline: Mapping[str, str] | None,
    start: datetime,
    end: datetime,
    no_baseline: str = NO_BASELINE,
) -> Result:
    """The canary against the stable release over [start, end] (see `Comparison`). No baseline,
    or one naming the canary's own release, is inconclusive (`no_baseline` says why)."""
    from pipeline_kit.judge import judge as canary_judge

    settings = check.compare
    assert settings is not None
    if baseline is None:
        return Result(check.name, end, "inconclusive", None, f"inconclusive: {no_baseline}")
    same = [key for key in ("release", "digest") if key in baseline and baseline[key] == values.get(key)]
    if same:
        return Result(check.name, end, "inconclusive", None, "inconclusive: the stable side is the canary's release")
    step = parse_duration(settings.resolution).total_seconds()
    sides = []
    for side in (values, baseline):
        try:
            query = render(check.query, side)
        except ValueError as exc:
            return Result(check.name, end, "error", None, f"query failed: {exc}")
        found = provider.series(query, start, end, step)
        if found.problem:
            return Result(check.name, end, "error", None, f"query failed: {found.problem}")
        sides.append(found.values)
    canary, stable = sides
    if min(len(canary), len(stable)) < settings.min_samples:
        return Result(
            check.name,
            end,
            "inconclusive",
            None,
            f"inconclusive: {len(canary)} canary and {len(stable)} stable samples, {settings.min_samples} needed",
        )
    higher = settings.direction == "higher-is-worse"
    found_ = canary_judge(canary, stable, higher_is_worse=higher)
    alpha = 1 - settings.confidence
    worse = "higher" if higher else "lower"
    detail = (
        f"median {_number(found_.canary_median)} vs stable {_number(found_.stable_median)} "
        f"({found_.ratio:.3g}x, tolerance {settings.tolerance:g}x), p={found_.p_value:.3g}"
    )
    if found_.p_value < alpha and found_.ratio > settings.tolerance:
        return Result(check.name, end, "failed", found_.ratio, f"{worse} than stable: {detail} < {alpha:.3g}")
    return Result(check.name, end, "passed", found_.ratio, f"not worse than stable: {detail}")


@dataclass(frozen=True)
class Analysis:
    verdict: Verdict
    reason: str
    results: tuple[Result, ...]
    intervals: int  # how many intervals were measured before the verdict

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"

    def counts(self) -> dict[str, int]:
        return {v: sum(r.verdict == v for r in self.results) for v in ("passed", "failed", "inconclusive", "error")}

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "intervals": self.intervals,
            "counts": self.counts(),
            "measurements": [r.as_dict() for r in self.results],
        }


def _now() -> datetime:
    return datetime.now(timezone.utc)


def analyse(
    provider: MetricProvider,
    config: AnalysisConfig,
    values: Mapping[str, str],
    *,
    baseline: Mapping[str, str] | None = None,
    no_baseline: str = NO_BASELINE,
    on_result: Callable[[int, Result], None] | None = None,
    clock: Callable[[], datetime] = _now,
    sleep: Callable[[float], None] = time.sleep,
) -> Analysis:
    """Run the analysis to its verdict (see the module docstring for the rules). `baseline`: the
    placeholder values of the stable release, for the checks that `compare` with it; without
    one (`no_baseline` says why) a comparison is inconclusive, and the check's bounds, which
    every comparing check has, are what judged it."""
    interval = parse_duration(config.interval).total_seconds()
    values = {**values, "interval": values.get("interval") or promql_duration(interval)}
    bounded = [c for c in config.checks if c.max is not None or c.min is not None]
    results: list[Result] = []
    failed = inconclusive = 0
    errors_in_a_row = dict.fromkeys((c.name for c in bounded), 0)
    passes = dict.fromkeys((c.name for c in bounded), 0)
    began = clock()
    start = time.monotonic()
    for tick in range(1, config.count + 1):
        sleep(max(0.0, start + tick * interval - time.monotonic()))  # on schedule, not drifting
        at = clock()
        for check in bounded:
            result = measure(provider, check, values, at)
            results.append(result)
            if on_result is not None:
                on_result(tick, result)
            failed += result.verdict == "failed"
            inconclusive += result.verdict == "inconclusive"
            errors_in_a_row[check.name] = errors_in_a_row[check.name] + 1 if result.verdict == "error" else 0
            passes[check.name] += result.verdict == "passed"
        verdict = _limit_broken(config, results, failed, inconclusive, errors_in_a_row)
        if verdict is not None:
            return Analysis(verdict[0], verdict[1], tuple(results), tick)
    never = [name for name, count in passes.items() if count == 0]
    if never:
        return Analysis(
            "inconclusive", f"{', '.join(never)} never measured a passing value", tuple(results), config.count
        )
    for check in config.checks:
        if check.compare is None:
            continue
        result = compare(provider, check, values, baseline, began, clock(), no_baseline)
        results.append(result)
        if on_result is not None:
            on_result(config.count, result)
        if baseline is None:
            continue  # recorded as inconclusive; the check's bounds judged the release
        if result.verdict != "passed":
            judged: Verdict = "failed" if result.verdict == "failed" else "inconclusive"
            return Analysis(judged, f"{check.name}: {result.detail}", tuple(results), config.count)
    counts = f"{failed} failed, {inconclusive} inconclusive of {counted(len(results), 'measurement')}"
    return Analysis(
        "passed", f"{config.count} interval(s) of {config.interval}: {counts}", tuple(results), config.count
    )


def _limit_broken(
    config: AnalysisConfig,
    results: Sequence[Result],
    failed: int,
    inconclusive: int,
    errors_in_a_row: Mapping[str, int],
) -> tuple[Verdict, str] | None:
    def last(verdict: Verdict) -> str:
        found = next(r for r in reversed(results) if r.verdict == verdict)
        return f"{found.check}: {found.detail}"

    if failed > config.failure_limit:
        return "failed", f"{failed} failed measurement(s), limit {config.failure_limit} ({last('failed')})"
    if inconclusive > config.inconclusive_limit:
        return "inconclusive", (
            f"{inconclusive} inconclusive measurement(s), limit {config.inconclusive_limit} ({last('inconclusive')})"
        )
    for name, count in errors_in_a_row.items():
        if count > config.consecutive_error_limit:
            return (
                "error",
                f"{count} query errors in a row for {name}, limit {config.consecutive_error_limit} ({last('error')})",
            )
    return None
