"""Prometheus over its HTTP API: instant queries at an explicit `time=`.

The query must come down to one value: a scalar, or a vector of exactly one sample (aggregate
with `sum(...)`). An empty vector (no data), `NaN` (e.g. 0/0 when there is no traffic) and
`+Inf`/`-Inf` are inconclusive; 400 (bad query), 422 (execution error), 503, a redirect (never
followed: the request carries credentials), a refused connection, no complete answer within
`timeout` seconds in all, or an answer that is not Prometheus's are errors. `time=` is always sent:
without it an instant query drifts with the clock and goes empty minutes after the data ends.
"""

from __future__ import annotations

import json
import math
import ssl
import urllib.parse
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pipeline_kit._internal.http import HttpProblem, request
from pipeline_kit.errors import first_line
from pipeline_kit.metrics.interface import Measurement, MetricProvider, Series, failed, inconclusive, ok

FORM = "application/x-www-form-urlencoded"
MAX_RESPONSE = 1 << 20  # an instant query of one value answers in bytes; more is not one value


class Prometheus(MetricProvider):
    def __init__(
        self,
        name: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        ca_file: str | None = None,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def _post(self, path: str, fields: dict[str, str]) -> bytes | str:
        """The answer's body, or why there is none: within `timeout` seconds in all (the server is
        told the same), never following a redirect (the headers carry credentials)."""
        fields = {**fields, "timeout": f"{max(1, int(self.timeout * 1000))}ms"}
        try:
            answer = request(
                "POST",
                f"{self.url}{path}",
                deadline=self.timeout,
                max_bytes=MAX_RESPONSE,
                body=urllib.parse.urlencode(fields).encode(),
                headers={
                    **self.headers,
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
                context=self.context,
            )
        except HttpProblem as exc:
            return f"{self.name}: {exc}"
        if answer.status != 200:
            return f"{self.name}: HTTP {answer.status}: {_server_error(answer.body)}"
        return answer.body

    def measure(self, query: str, at: datetime) -> Measurement:
        body = self._post("/api/v1/query", {"query": query, "time": f"{at.timestamp():.3f}"})
        return failed(body) if isinstance(body, str) else _value(self.name, body)

    def series(self, query: str, start: datetime, end: datetime, step_seconds: float) -> Series:
        body = self._post(
            "/api/v1/query_range",
            {
                "query": query,
                "start": f"{start.timestamp():.3f}",
                "end": f"{end.timestamp():.3f}",
                "step": f"{max(0.001, step_seconds):.3f}",
            },
        )
        if isinstance(body, str):
            return Series((), body)
        try:
            answer: Any = json.loads(body)
            if answer.get("status") != "success":
                return Series(
                    (), f"{self.name}: {answer.get('errorType', 'error')}: {first_line(answer.get('error', ''))}"
                )
            result = answer["data"]["result"]
            if len(result) > 1:
                return Series((), f"{len(result)} series returned: aggregate the query to one (e.g. sum(...))")
            raw = [float(value) for _, value in result[0]["values"]] if result else []
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return Series((), f"{self.name}: not a Prometheus range query answer")
        return Series(tuple(v for v in raw if math.isfinite(v)))


def _server_error(body: bytes) -> str:
    try:
        answer = json.loads(body)
        return f"{answer.get('errorType', 'error')}: {first_line(answer.get('error', ''))}"
    except (ValueError, AttributeError):
        return "not a Prometheus error answer"


def _value(name: str, body: bytes) -> Measurement:
    try:
        answer: Any = json.loads(body)
        if answer.get("status") != "success":
            return failed(f"{name}: {answer.get('errorType', 'error')}: {first_line(answer.get('error', ''))}")
        data = answer["data"]
        kind, result = data["resultType"], data["result"]
        if kind == "scalar":
            raw = result[1]
        elif kind == "vector":
            if not result:
                return inconclusive("no data: the query returned no series")
            if len(result) > 1:
                return failed(f"{len(result)} series returned: aggregate the query to one value (e.g. sum(...))")
            raw = result[0]["value"][1]
        else:
            return failed(f"a {kind} result: use an instant query that comes down to one value")
        value = float(raw)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return failed(f"{name}: not a Prometheus query answer")
    if math.isnan(value):
        return inconclusive("NaN (no traffic: 0/0?)")
    if math.isinf(value):
        return inconclusive(f"{raw} (a division by zero?)")
    return ok(value)
