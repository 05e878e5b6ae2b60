"""Prometheus over its HTTP API: instant queries at an explicit `time=`.

The query must come down to one value: a scalar, or a vector of exactly one sample (aggregate
with `sum(...)`). An empty vector (no data), `NaN` (e.g. 0/0 when there is no traffic) and
`+Inf`/`-Inf` are inconclusive; 400 (bad query), 422 (execution error), 503, a refused
connection, a timeout or an answer that is not Prometheus's are errors. `time=` is always sent:
without it an instant query drifts with the clock and goes empty minutes after the data ends.
"""

from __future__ import annotations

import json
import math
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pipeline_kit.errors import first_line
from pipeline_kit.metrics.interface import Measurement, MetricProvider, failed, inconclusive, ok

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

    def measure(self, query: str, at: datetime) -> Measurement:
        params = urllib.parse.urlencode(
            {"query": query, "time": f"{at.timestamp():.3f}", "timeout": f"{max(1, int(self.timeout * 1000))}ms"}
        )
        request = urllib.request.Request(  # noqa: S310 - http(s) only: the config's url pattern
            f"{self.url}/api/v1/query",
            data=params.encode(),
            headers={**self.headers, "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as response:  # noqa: S310 - http(s) only, checked by the config
                body = response.read(MAX_RESPONSE + 1)
        except urllib.error.HTTPError as exc:
            return failed(f"{self.name}: HTTP {exc.code}: {_server_error(exc)}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return failed(f"{self.name}: {first_line(reason)}")
        if len(body) > MAX_RESPONSE:
            return failed(f"{self.name}: answer larger than {MAX_RESPONSE} bytes: not one value")
        return _value(self.name, body)


def _server_error(exc: urllib.error.HTTPError) -> str:
    try:
        answer = json.loads(exc.read(MAX_RESPONSE))
        return f"{answer.get('errorType', 'error')}: {first_line(answer.get('error', ''))}"
    except (ValueError, AttributeError, OSError):
        return str(exc.reason)


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
