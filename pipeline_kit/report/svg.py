"""The report's charts as inline SVG, drawn by the kit (no script, no external file): a check's
measurements against its bounds, a rollout's weight over time, a release plan's services.

Every text that reaches a chart is escaped here; colours come from classes the page's one style
block defines, so a chart says a state by its class and its words, never by colour alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 560, 180, 56, 16, 16, 36


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float | None  # None: nothing measured (an error or inconclusive), drawn on the axis
    state: str  # a class: passed, failed, inconclusive, error, signed, ledger
    label: str  # said on hover and in the title text


def _x(at: datetime, start: datetime, end: datetime) -> float:
    span = (end - start).total_seconds() or 1.0
    return LEFT + (at - start).total_seconds() / span * (WIDTH - LEFT - RIGHT)


def _y(value: float, top: float) -> float:
    return TOP + (1 - value / (top or 1.0)) * (HEIGHT - TOP - BOTTOM)


def _frame(title: str, start: datetime, end: datetime, top: float, unit: str) -> list[str]:
    bottom = HEIGHT - BOTTOM
    return [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{escape(_number(top))}{escape(unit)}</text>',
        f'<text x="{LEFT - 4}" y="{bottom}" text-anchor="end">0</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 8}">{start:%Y-%m-%d %H:%M:%S}Z</text>',
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">{end:%H:%M:%S}Z</text>',
    ]


def _number(value: float) -> str:
    return f"{value:.6g}"


def measurements(title: str, points: Sequence[Point], bounds: Sequence[tuple[str, float]]) -> str:
    """A check's measurements over time, each bound a dashed line named by its kind and value."""
    if not points:
        return ""
    start, end = min(p.at for p in points), max(p.at for p in points)
    values = [p.value for p in points if p.value is not None] + [b for _, b in bounds]
    top = max([abs(v) for v in values] + [0.0]) * 1.2 or 1.0
    parts = _frame(title, start, end, top, "")
    for kind, bound in bounds:
        y = _y(bound, top)
        parts.append(f'<line class="bound" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>')
        parts.append(f'<text class="bound" x="{WIDTH - RIGHT}" y="{y - 3:.1f}" text-anchor="end">')
        parts.append(f"{escape(kind)} {escape(_number(bound))}</text>")
    drawn = [(p, _x(p.at, start, end), _y(p.value if p.value is not None else 0.0, top)) for p in points]
    line = " ".join(f"{x:.1f},{y:.1f}" for p, x, y in drawn if p.value is not None)
    if line:
        parts.append(f'<polyline class="series" points="{line}"/>')
    for p, x, y in drawn:
        parts.append(f'<circle class="{escape(p.state)}" cx="{x:.1f}" cy="{y:.1f}" r="4">')
        parts.append(f"<title>{escape(p.label)}</title></circle>")
    parts.append("</svg>")
    return "".join(parts)


def weights(title: str, points: Sequence[Point]) -> str:
    """A rollout's traffic weight (percent) over time, as steps; each point's class its evidence."""
    if not points:
        return ""
    start, end = min(p.at for p in points), max(p.at for p in points)
    parts = _frame(title, start, end, 100.0, "%")
    path, previous = [], None
    for p in points:
        x, y = _x(p.at, start, end), _y(p.value or 0.0, 100.0)
        if previous is not None:
            path.append(f"{x:.1f},{previous:.1f}")
        path.append(f"{x:.1f},{y:.1f}")
        previous = y
    parts.append(f'<polyline class="series" points="{" ".join(path)}"/>')
    for p in points:
        x, y = _x(p.at, start, end), _y(p.value or 0.0, 100.0)
        parts.append(f'<circle class="{escape(p.state)}" cx="{x:.1f}" cy="{y:.1f}" r="4">')
        parts.append(f"<title>{escape(p.label)}</title></circle>")
    parts.append("</svg>")
    return "".join(parts)


def plan(title: str, services: Sequence[tuple[str, str]]) -> str:
    """A release plan's services in their order, each a box with its state, arrows between."""
    box, gap, height = 150, 40, 70
    width = max(1, len(services)) * (box + gap)
    parts = [
        f'<svg class="plan" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (service, state) in enumerate(services):
        x = index * (box + gap) + 4
        parts.append(f'<rect class="{escape(_state_class(state))}" x="{x}" y="8" width="{box}" height="50" rx="6"/>')
        parts.append(f'<text x="{x + box / 2}" y="29" text-anchor="middle">{escape(service[:24])}</text>')
        parts.append(f'<text x="{x + box / 2}" y="47" text-anchor="middle">{escape(state[:24])}</text>')
        if index:
            parts.append(f'<line class="edge" x1="{x - gap}" y1="33" x2="{x - 4}" y2="33"/>')
            parts.append(f'<polygon class="edge" points="{x - 4},33 {x - 10},29 {x - 10},37"/>')
    parts.append("</svg>")
    return "".join(parts)


def dag(title: str, nodes: Sequence[tuple[str, Sequence[str], str, str]]) -> str:
    """A release plan's graph: (service, needs, state class, label) boxes in layers (each after
    everything it needs), an arrow from each need to what needs it."""
    layer: dict[str, int] = {}
    for service, needs, _, _ in nodes:  # in dependency order: every need is placed already
        layer[service] = 1 + max((layer.get(n, -1) for n in needs), default=-1)
    rows: dict[int, int] = {}
    place: dict[str, tuple[float, float]] = {}
    box, height, gap_x, gap_y = 170, 54, 60, 18
    for service, _, _, _ in nodes:
        row = rows.get(layer[service], 0)
        rows[layer[service]] = row + 1
        place[service] = (4 + layer[service] * (box + gap_x), 4 + row * (height + gap_y))
    width = 8 + (max(layer.values(), default=0) + 1) * (box + gap_x)
    tall = 8 + max(rows.values(), default=1) * (height + gap_y)
    parts = [
        f'<svg class="plan" role="img" viewBox="0 0 {width} {tall}" width="{width}" height="{tall}">',
        f"<title>{escape(title)}</title>",
    ]
    for service, needs, _, _ in nodes:
        x2, y2 = place[service]
        for need in needs:
            if need in place:
                x1, y1 = place[need]
                tip_x, tip_y = x2 - 2, y2 + height / 2
                parts.append(
                    f'<line class="edge" x1="{x1 + box:.0f}" y1="{y1 + height / 2:.0f}" '
                    f'x2="{tip_x:.0f}" y2="{tip_y:.0f}"/>'
                    f'<polygon class="edge" points="{tip_x:.0f},{tip_y:.0f} {tip_x - 7:.0f},{tip_y - 4:.0f} '
                    f'{tip_x - 7:.0f},{tip_y + 4:.0f}"/>'
                )
    for service, _, state, label in nodes:
        x, y = place[service]
        parts.append(f'<rect class="{escape(state)}" x="{x:.0f}" y="{y:.0f}" width="{box}" height="{height}" rx="6"/>')
        parts.append(f'<text x="{x + box / 2:.0f}" y="{y + 22:.0f}" text-anchor="middle">{escape(service[:26])}</text>')
        parts.append(f'<text x="{x + box / 2:.0f}" y="{y + 40:.0f}" text-anchor="middle">{escape(label[:30])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _state_class(state: str) -> str:
    return {"step-done": "passed", "step-failed": "failed", "compensated": "error"}.get(state, "ledger")
