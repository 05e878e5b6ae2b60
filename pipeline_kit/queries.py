"""Metric query templates: `{{ name }}` placeholders filled with values escaped for PromQL.

A query names the release it judges through placeholders, so a measurement always belongs to one
release digest (a new release never inherits an old one's analysis):

    sum(rate(http_requests_total{release="{{ release }}",code=~"5.."}[{{ interval }}]))

(`{{ slot }}` is the slot a rollout deploys the release to, for a preview's own series.)

String values are escaped for a double-quoted PromQL string (backslash, quote, newline), so a
value can never close the string and change the query. Durations are checked to be PromQL
durations. An unknown placeholder is a config error, found when the config is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# placeholder -> what it is; the strings are escaped, the durations validated
STRINGS = ("release", "digest", "environment", "slot")
DURATIONS = ("interval", "window")
PLACEHOLDERS = (*STRINGS, *DURATIONS)

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
_DURATION = re.compile(r"^(?:\d+(?:ms|[smhdwy]))+$")


def placeholders(template: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER.finditer(template)]


def template_problem(template: str, allowed: tuple[str, ...] = PLACEHOLDERS) -> str | None:
    """Why a query template cannot be filled, or None. (A value made up for missing data, such as
    `or vector(0)`, is caught when measured: the provider shows the query's series exist.)"""
    unknown = sorted({name for name in placeholders(template) if name not in allowed})
    if unknown:
        known = ", ".join("{{ " + name + " }}" for name in allowed)
        return f"unknown placeholder {{{{ {unknown[0]} }}}} (known: {known})"
    return None


def escape(value: str) -> str:
    """`value` as the inside of a double-quoted PromQL string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def render(template: str, values: Mapping[str, str]) -> str:
    """The query with every placeholder filled; a missing value or a bad duration is a ValueError."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ValueError(f"no value for {{{{ {name} }}}} here")
        value = values[name]
        if name in DURATIONS:
            if not _DURATION.fullmatch(value):
                raise ValueError(f"{{{{ {name} }}}} is not a PromQL duration: {value!r}")
            return value
        return escape(value)

    return _PLACEHOLDER.sub(fill, template)


def promql_duration(seconds: float) -> str:
    """Whole seconds as a PromQL duration (`90s`); at least one second."""
    return f"{max(1, round(seconds))}s"
