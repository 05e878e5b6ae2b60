"""The report's sections below the releases: chain of custody, analyses, rollouts, kill
switches, rollbacks and holds, release plans. Each draws only what the verified history holds,
says what evidence stands behind it, and escapes every text."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from pipeline_kit.report import svg
from pipeline_kit.report.history import Event, History, ReleaseFacts
from pipeline_kit.report.plans import PlanRun

_ARRIVING = ("promoted", "waived", "deployed", "analysed", "rollout")
_BOUND = re.compile(r"\b(max|min) (-?[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?)")
_GATE = re.compile(r"^PIPELINE_KIT_GATE_([A-Z0-9_]+)_(PASSED|DENIED|ERROR)$")


STATUS_WORDS = {
    "verified": "signed, verified",
    "none": "no signed arrival",
    "refused": "REFUSED",
    "unsigned": "ledger only",
    "sealed": "ledger, sealed",
    "missing": "none",
}


def badge(status: str, title: str = "") -> str:
    words = escape(STATUS_WORDS.get(status, status))
    return f'<span class="badge {escape(status)}" title="{escape(title)}">{words}</span>'


def event_status(event: Event) -> str:
    """An event's badge: verified, refused (and why), or the ledger's word (sealed or not)."""
    if event.status == "refused":
        return badge("refused", event.refusal()) + f" <span class='note'>{escape(event.refusal())}</span>"
    if event.status == "verified":
        return badge("verified", "; ".join(r.why for r in event.records))
    if event.sealed:
        return badge("sealed", "a later signed record commits to this ledger entry")
    return badge("unsigned", "no signature covers this ledger entry")


def _at(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}Z" if moment else "-"


def _signed_gates(levels: Sequence[str]) -> str:
    found = [_GATE.match(level) for level in levels]
    return ", ".join(f"{m.group(1).lower().replace('_', '-')}: {m.group(2).lower()}" for m in found if m)


def _decision(history: History, events: Sequence[Event]) -> str:
    """The gates of the newest committed decision among `events`, with their reasons and approvers."""
    for event in reversed(events):
        document = history.document(event, "decision")
        gates = document.get("gates") if document else None
        if not isinstance(gates, list):
            continue
        rows = []
        for gate in gates:
            if not isinstance(gate, dict):
                continue
            approvers = (gate.get("evidence") or {}).get("approvers")
            who = f"<br>approved by: {escape(', '.join(map(str, approvers)))}" if isinstance(approvers, list) else ""
            rows.append(
                f"<li>{escape(str(gate.get('gate')))}: <b>{escape(str(gate.get('verdict')))}</b>, "
                f"{escape(str(gate.get('reason'))[:300])}{who}</li>"
            )
        by = escape(event.entry.actor)
        return f"<ul>{''.join(rows)}</ul><span class='note'>decided by {by} (a signed record commits to it)</span>"
    return "<span class='note'>no decision record a signature commits to</span>"


def custody(history: History, shown: Sequence[ReleaseFacts], environment: str | None) -> str:
    """Per release, each environment: its signed arrivals (and the gates they sign), the sealed
    decision's gates and reasons, and any signed rollback or refused record."""
    if not shown:
        return ""
    parts = ["<h2>Chain of custody</h2>"]
    environments = (environment,) if environment else history.environments
    for facts in sorted(shown, key=lambda f: f.id):
        rows = []
        for env in environments:
            about = [e for e in history.of(env) if facts.id in {e.entry.release, *(r.release for r in e.records)}]
            cells = []
            for event in about:
                for record in event.records:
                    if record.release != facts.id:
                        continue
                    if not record.verified:
                        cells.append(f"{badge('refused', record.why)} {escape(record.kind)}: {escape(record.why)}")
                    elif record.kind == "vsa" and event.entry.kind in _ARRIVING:
                        result = escape(str(record.predicate.get("verificationResult")))
                        gates = escape(_signed_gates(record.levels))
                        cells.append(
                            f"{badge('verified', record.why)} arrived, {result}, {_at(record.signed_at)}, "
                            f"{escape(record.why)}; gates signed: {gates or '-'}"
                        )
                    elif record.kind == "hold":
                        reason = str(record.annotations.get("reason") or "")[:300]
                        cells.append(f"{badge('verified')} rolled back {_at(record.signed_at)}: {escape(reason)}")
            cells += [
                f"{badge('sealed')} deployed {_at(e.entry.time)} (the ledger's time, sealed)"
                for e in about
                if e.entry.kind in ("deployed", "canary-deployed") and e.sealed and e.entry.release == facts.id
            ]
            arrived = "<br>".join(cells) or f"{badge('missing')} no signed arrival"
            rows.append(f"<tr><th>{escape(env)}</th><td>{arrived}</td><td>{_decision(history, about)}</td></tr>")
        parts.append(f"<h3>{escape(facts.id)}</h3><table><tr><th>environment</th><th>signed record</th>")
        parts.append(f"<th>gates and reasons</th></tr>{''.join(rows)}</table>")
    return "".join(parts)


def _bounds(measurements: Sequence[Mapping[str, Any]]) -> list[tuple[str, float]]:
    found: dict[str, float] = {}
    for item in measurements:
        for kind, value in _BOUND.findall(str(item.get("detail") or "")):
            found.setdefault(kind, float(value))
    return sorted(found.items())


def _measured(item: Mapping[str, Any]) -> svg.Point | None:
    try:
        at = datetime.fromisoformat(str(item["time"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    value = item.get("value")
    number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    verdict = str(item.get("verdict"))
    state = verdict if verdict in ("passed", "failed", "inconclusive", "error") else "error"
    return svg.Point(at, number, state, f"{at:%H:%M:%S}Z {verdict}: {item.get('detail')}"[:300])


def analyses(history: History, events: Sequence[Event]) -> str:
    """Each analysis's measurements against their bounds, when its record is committed to."""
    parts = []
    for event in [e for e in events if e.entry.kind == "analysed"][-50:]:
        entry = event.entry
        title = f"{entry.environment} {entry.release}: analysis {entry.details.get('verdict')}"
        document = history.document(event, "analysis")
        measurements = document.get("measurements") if document else None
        parts.append(f"<h3>{escape(title)} {event_status(event)}</h3><p>{escape((entry.reason or '')[:300])}</p>")
        if not isinstance(measurements, list):
            parts.append("<p class='note'>its measurements are not shown: no record a signature commits to</p>")
            continue
        checks: dict[str, list[Mapping[str, Any]]] = {}
        for item in measurements[:2000]:
            if isinstance(item, dict):
                checks.setdefault(str(item.get("check")), []).append(item)
        for check, items in checks.items():
            points = [p for p in map(_measured, items) if p is not None]
            parts.append(svg.measurements(f"{title}: {check}", points, _bounds(items)))
    return "<h2>Analyses</h2>" + "".join(parts) if parts else ""


def rollouts(events: Sequence[Event]) -> str:
    """Each rollout's weight over time: signed step passes, and the ledger's moves."""
    runs: dict[tuple[str, str | None], list[Event]] = {}
    for event in events:
        if event.entry.kind in ("rollout", "rollout-step"):
            runs.setdefault((event.entry.environment, event.entry.release), []).append(event)
    parts = []
    for (environment, release), steps in runs.items():
        points, rows = [], []
        for event in steps:
            details = event.entry.details
            weight = details.get("weight")
            weight = float(weight) if isinstance(weight, int) and not isinstance(weight, bool) else None
            step = details.get("step")
            signed = event.status == "verified"  # a step's signed pass, or the finished rollout's VSA
            state = "signed" if signed else "failed" if details.get("state") == "failed" else "ledger"
            what = "step passed (signed)" if event.entry.kind == "rollout-step" else str(details.get("state"))
            at = event.signed_at if signed and event.signed_at else event.entry.time
            points.append(svg.Point(at, weight, state, f"{what}, weight {weight}"))
            rows.append(
                f"<tr><td>{_at(at)}</td><td>{escape(str(step))}</td><td>{escape(str(weight))}</td>"
                f"<td>{escape(what)}</td><td>{event_status(event)}</td></tr>"
            )
        title = f"rollout of {release} in {environment}"
        parts.append(f"<h3>{escape(title)}</h3>{svg.weights(title, points)}")
        parts.append("<table><tr><th>time</th><th>step</th><th>weight %</th><th>what</th><th>evidence</th></tr>")
        parts.append("".join(rows) + "</table>")
    return "<h2>Rollouts</h2>" + "".join(parts) if parts else ""


def switches(events: Sequence[Event]) -> str:
    rows = [
        f"<tr><td>{_at(e.entry.time)}</td><td>{escape(e.entry.environment)}</td>"
        f"<td>{escape(str(e.entry.details.get('flag')))}</td><td>{escape(e.entry.kind)}</td>"
        f"<td>{escape((e.entry.reason or '')[:300])}</td><td>{event_status(e)}</td></tr>"
        for e in events
        if e.entry.kind in ("flag-killed", "flag-restored")
    ]
    if not rows:
        return ""
    header = "<tr><th>time</th><th>env</th><th>flag</th><th>change</th><th>reason</th><th>evidence</th></tr>"
    return f"<h2>Kill switches</h2><table>{header}{''.join(rows)}</table>"


def rollbacks(events: Sequence[Event]) -> str:
    """Signed rollbacks (holds) with their signed reasons, and the root causes lifting them."""
    rows = []
    for event in events:
        entry = event.entry
        if entry.kind not in ("rolled-back", "annotated"):
            continue
        record = next((r for r in event.records if r.kind in ("hold", "root-cause")), None)
        if record is not None and record.verified:
            notes = record.annotations
            said = notes.get("reason") or notes.get("rootCause") or notes.get("cause") or ""
            why = f"{escape(str(said)[:300])} <span class='note'>(signed)</span>"
        else:
            why = f"{escape((entry.reason or '')[:300])} <span class='note'>(the ledger's word)</span>"
        what = "rollback, hold" if entry.kind == "rolled-back" else "root cause, hold lifted"
        moved = escape(entry.release or "")
        if entry.kind == "rolled-back":
            moved = f"{escape(str(entry.details.get('from')))} &rarr; {escape(str(entry.details.get('to')))}"
        rows.append(
            f"<tr><td>{_at(event.signed_at or entry.time)}</td><td>{escape(entry.environment)}</td><td>{what}</td>"
            f"<td><code>{moved}</code></td><td>{why}</td>"
            f"<td>{event_status(event)}</td></tr>"
        )
    if not rows:
        return ""
    header = (
        "<tr><th>time</th><th>env</th><th>what</th><th>release</th><th>root cause / reason</th><th>evidence</th></tr>"
    )
    return f"<h2>Rollbacks and holds</h2><table>{header}{''.join(rows)}</table>"


def plans(history: History, events: Sequence[Event]) -> str:
    """Each release plan's services in order with their states (the ledger's; a step whose
    release arrived by a verified VSA there says so)."""
    runs: dict[tuple[str, str], list[Event]] = {}
    for event in events:
        plan = event.entry.details.get("plan")
        if event.entry.kind == "saga" and isinstance(plan, str):
            runs.setdefault((event.entry.environment, plan), []).append(event)
    parts = []
    for (environment, plan), steps in runs.items():
        order = next((e.entry.details.get("steps") for e in steps if e.entry.details.get("state") == "started"), None)
        states: dict[str, str] = {str(s): "pending" for s in order} if isinstance(order, list) else {}
        for event in steps:
            service = event.entry.details.get("service")
            if isinstance(service, str):
                states[service] = str(event.entry.details.get("state"))
        outcome = next(
            (str(e.entry.details.get("state")) for e in reversed(steps) if e.entry.details.get("service") is None), ""
        )
        title = f"release plan {plan[:12]} to {environment}: {outcome}"
        parts.append(
            f"<h3>{escape(title)} {badge('unsigned', 'a release plan records its progress in the ledger')}</h3>"
        )
        parts.append(svg.plan(title, list(states.items())))
    return "<h2>Release plans</h2>" + "".join(parts) if parts else ""


def plan_runs_section(runs: Sequence[PlanRun]) -> str:
    """Each run of the release plan given (`report --plan`): its graph, each node's state as the
    plan's ledger says it and whether the service's own ledger holds a verified arrival."""
    parts = []
    for run in runs:
        title = f"release plan {run.digest[:12]} to {run.environment}: {run.outcome or 'running'}"
        marks = {"verified": "passed", "refused": "failed"}
        nodes = [
            (n.service, n.needs, marks.get(n.arrived, "failed" if n.state == "step-failed" else "ledger"), n.state)
            for n in run.nodes
        ]
        rows = "".join(
            f"<tr><td>{escape(n.service)}</td><td>{escape(', '.join(n.needs))}</td><td>{escape(n.state)}</td>"
            f"<td><code>{escape(n.release or '')}</code></td><td>{badge(n.arrived, n.why)} {escape(n.why)}</td></tr>"
            for n in run.nodes
        )
        parts.append(f"<h3>{escape(title)}</h3>{svg.dag(title, nodes)}")
        parts.append("<table><tr><th>service</th><th>needs</th><th>state (the plan's ledger)</th><th>release</th>")
        parts.append(f"<th>arrival (the service's ledger, verified)</th></tr>{rows}</table>")
    return "<h2>Release plans</h2>" + "".join(parts) if parts else ""
