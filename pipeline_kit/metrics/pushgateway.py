"""A Prometheus Pushgateway: one group of gauges replaced by a PUT, for Prometheus to scrape.

The grouping key (job and labels) goes in the path, each value base64url-encoded (the
Pushgateway's `@base64` form), so no value can reach another path or group; the metrics go in
the body in the text exposition format, label values escaped. Bounded in time, never following
a redirect (the request carries the bearer token); the answer is one line saying what went wrong,
or None when the group was stored.
"""

from __future__ import annotations

import base64
import math
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pipeline_kit._internal.http import HttpProblem, request
from pipeline_kit._internal.redact import strip_credentials

MAX_ANSWER = 1 << 16  # the Pushgateway answers 200 with nothing, or a line of error


@dataclass(frozen=True)
class Gauge:
    """One sample: a gauge `name{labels} value`."""

    name: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    help: str = ""


def exposition(gauges: Sequence[Gauge]) -> bytes:
    """The text exposition format: each name's HELP and TYPE once, then its samples."""
    lines: list[str] = []
    seen: set[str] = set()
    for gauge in gauges:
        if not math.isfinite(gauge.value):
            raise ValueError(f"{gauge.name}: not a finite value")
        if gauge.name not in seen:
            seen.add(gauge.name)
            if gauge.help:
                lines.append(f"# HELP {gauge.name} {_escape(gauge.help, quote=False)}")
            lines.append(f"# TYPE {gauge.name} gauge")
        labels = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(gauge.labels.items()))
        lines.append(f"{gauge.name}{{{labels}}} {gauge.value!r}" if labels else f"{gauge.name} {gauge.value!r}")
    return ("\n".join(lines) + "\n").encode()


def _escape(value: str, quote: bool = True) -> str:
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n")
    return escaped.replace('"', '\\"') if quote else escaped


def group_path(job: str, grouping: Mapping[str, str]) -> str:
    """`/metrics/job@base64/<job>/<label>@base64/<value>...`: every value encoded, none can add a
    path segment (an empty value is `=`, the Pushgateway's spelling of it)."""
    parts = ["/metrics", "job@base64", _b64(job)]
    for label, value in grouping.items():
        parts += [f"{label}@base64", _b64(value)]
    return "/".join(parts)


def _b64(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode() or "="


class Pushgateway:
    def __init__(
        self,
        url: str,
        job: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        ca_file: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.shown = strip_credentials(self.url)  # what messages name
        self.job = job
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def replace(self, grouping: Mapping[str, str], gauges: Sequence[Gauge]) -> str | None:
        """PUT the group: its metrics become exactly `gauges`. None when stored, else why not."""
        try:
            answer = request(
                "PUT",
                self.url + group_path(self.job, grouping),
                deadline=self.timeout,
                max_bytes=MAX_ANSWER,
                body=exposition(gauges),
                headers={**self.headers, "Content-Type": "text/plain; version=0.0.4"},
                context=self.context,
            )
        except HttpProblem as exc:
            return f"{self.shown}: {exc}"
        if answer.status not in (200, 202):
            said = answer.body.decode("utf-8", "replace").strip().splitlines()
            return f"{self.shown}: HTTP {answer.status}" + (f": {said[0][:200]}" if said else "")
        return None
