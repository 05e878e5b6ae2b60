"""What a metrics provider is: one query, at one instant, giving one number or saying why not.

A measurement is `ok` with a finite value, `inconclusive` (no data, NaN, an infinity: nothing
to judge) or `error` (the query failed: refused, timed out, rejected). Neither of the last two
is ever a pass; the caller decides whether it counts against a limit or denies at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Status = Literal["ok", "inconclusive", "error"]


@dataclass(frozen=True)
class Measurement:
    status: Status
    value: float | None  # finite when ok, else None
    detail: str  # why, when not ok; the query's own words when the server gave them


def ok(value: float) -> Measurement:
    return Measurement("ok", value, "")


def inconclusive(detail: str) -> Measurement:
    return Measurement("inconclusive", None, detail)


def failed(detail: str) -> Measurement:
    return Measurement("error", None, detail)


@dataclass(frozen=True)
class Series:
    """A query's values over a window (NaN and infinities dropped), or why there are none."""

    values: tuple[float, ...]
    problem: str | None = None  # set when the query failed; an empty series is no data


class MetricProvider(ABC):
    name: str

    @abstractmethod
    def measure(self, query: str, at: datetime) -> Measurement:
        """The query's single value at `at`; never raises for a bad answer, says so instead."""

    @abstractmethod
    def series(self, query: str, start: datetime, end: datetime, step_seconds: float) -> Series:
        """The query's one series from `start` to `end`, one value per step."""
