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
from pipeline_kit.queries import escape

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
        measured = failed(body) if isinstance(body, str) else _value(self.name, body)
        return self._shown(query, at, 0.0, measured) if measured.status == "ok" else measured

    def _shown(self, query: str, at: datetime, span: float, measured: Measurement) -> Measurement:
        """`measured`, once a query of its own shows that a series the query reads exists at `at`
        (over `span` seconds before it too): a value computed from no data (`or vector(0)`, in
        whatever spelling) is no data."""
        reads = selectors(query)
        if isinstance(reads, str):
            return failed(reads)
        found, window = reads
        if not found:
            return inconclusive("no data: the query reads no series (a constant is not a measurement)")
        window += span
        presence = " or ".join(f"count(last_over_time({selector}[{int(window)}s]))" for selector in found)
        body = self._post("/api/v1/query", {"query": presence, "time": f"{at.timestamp():.3f}"})
        shown = failed(body) if isinstance(body, str) else _value(self.name, body)
        if shown.status == "error":
            return failed(f"checking that its series exist: {shown.detail}")
        if shown.status != "ok" or not shown.value:
            return inconclusive(f"no data: none of the series it reads exists ({', '.join(found)[:300]})")
        return measured

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
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
            return Series((), f"{self.name}: not a Prometheus range query answer")
        values = tuple(v for v in raw if math.isfinite(v))
        if values:
            shown = self._shown(query, end, (end - start).total_seconds(), ok(values[0]))
            if shown.status == "error":
                return Series((), shown.detail)
            if shown.status != "ok":
                return Series(())  # no data: what the comparison counts as no samples
        return Series(values)


def _server_error(body: bytes) -> str:
    try:
        answer = json.loads(body)
        return f"{answer.get('errorType', 'error')}: {first_line(answer.get('error', ''))}"
    except (ValueError, AttributeError, RecursionError):
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
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        return failed(f"{name}: not a Prometheus query answer")
    if math.isnan(value):
        return inconclusive("NaN (no traffic: 0/0?)")
    if math.isinf(value):
        return inconclusive(f"{raw} (a division by zero?)")
    return ok(value)


LOOKBACK = 300.0  # seconds: how far back Prometheus looks for an instant selector's last sample
_OPERATORS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


def selectors(query: str) -> tuple[list[str], float] | str:
    """The series selectors a query reads, as PromQL without their offsets, and how far back
    (seconds) it reads them (its longest range plus offset, at least the lookback); or why the
    query cannot be read."""
    import promql_parser

    try:
        tree = promql_parser.parse(query)
    except Exception as exc:
        return f"cannot read the query to find its series: {first_line(exc)}"
    found: list[str] = []
    pinned: list[str] = []
    window = LOOKBACK

    def visit(node: Any) -> None:
        nonlocal window
        if isinstance(node, promql_parser.VectorSelector):
            if node.at is not None:
                pinned.append(_selector(node))
            found.append(_selector(node))
            offset = node.offset.total_seconds() if node.offset is not None else 0.0
            window = max(window, LOOKBACK + abs(offset))
        elif isinstance(node, (promql_parser.MatrixSelector, promql_parser.SubqueryExpr)):
            inner = getattr(node, "vector_selector", None)
            offset = inner.offset.total_seconds() if inner is not None and inner.offset is not None else 0.0
            reach = node.range.total_seconds() if node.range is not None else 0.0
            window = max(window, reach + abs(offset))

    promql_parser.walk(tree, visit)
    if pinned:  # `@` reads a fixed moment: not a measurement of the release now
        return f"the query reads {pinned[0]} at a fixed moment (@): measure the release as it is now"
    return list(dict.fromkeys(found)), window


def _selector(node: Any) -> str:
    """A vector selector as PromQL: its name and matchers, without offset or @."""
    name = [f'__name__="{escape(node.name)}"'] if node.name else []
    groups = [list(node.matchers.matchers), *(list(group) for group in node.matchers.or_matchers or [])]
    rendered = [",".join(name + [f'{m.name}{_OPERATORS[str(m.op)]}"{escape(m.value)}"' for m in g]) for g in groups]
    return "{" + " or ".join(r for r in rendered if r) + "}"
