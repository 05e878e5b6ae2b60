"""The release report: one self-contained HTML file drawn from the verified history.

Nothing leaves the page: no script, no font, no image or style from elsewhere, and a Content
Security Policy that lets only its own style block apply (by hash) and forbids every fetch. Every
text from the history (reasons, names, actors: a job or an attacker may write them) is escaped.
A record that did not verify is shown as refused with the reason, a ledger line no signature
covers as the ledger's word; neither is ever shown as passed.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from html import escape

from pipeline_kit import __version__
from pipeline_kit.report.history import Event, History, ReleaseFacts
from pipeline_kit.report.plans import PlanRun
from pipeline_kit.report.sections import (
    analyses,
    badge,
    custody,
    event_status,
    plan_runs_section,
    rollbacks,
    rollouts,
    switches,
)
from pipeline_kit.report.sections import plans as plans_of

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#1b1f24;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;width:100%}
th,td{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}code{font-size:12px;word-break:break-all}
.badge{display:inline-block;border-radius:.6rem;padding:0 .5rem;font-size:12px;font-weight:600}
.verified,.passed{background:#dafbe1;color:#116329}.refused,.failed{background:#ffebe9;color:#a40e26}
.unsigned,.ledger,.missing,.none{background:#eaeef2;color:#424a53}.sealed{background:#ddf4ff;color:#0a3069}
svg text{font-size:11px;fill:#424a53}svg .axis{stroke:#8c959f}svg .series{fill:none;stroke:#0969da}
svg line.bound{stroke:#cf222e;stroke-dasharray:4 3}svg text.bound{fill:#cf222e}svg .edge{stroke:#57606a;fill:#57606a}
svg circle.passed,svg circle.signed{fill:#2da44e;stroke:#116329}svg circle.failed{fill:#cf222e;stroke:#a40e26}
svg circle.inconclusive,svg circle.error{fill:#bf8700;stroke:#7d4e00}svg circle.ledger{fill:#d0d7de;stroke:#57606a}
svg rect.passed{fill:#dafbe1;stroke:#116329}svg rect.failed{fill:#ffebe9;stroke:#a40e26}
svg rect.error{fill:#fff8c5;stroke:#7d4e00}svg rect.ledger{fill:#eaeef2;stroke:#57606a}svg.plan text{fill:#1b1f24}
.note{color:#57606a;font-size:12px}
"""
# No fetch of any kind; only this style block (by its hash) applies; no form, no base.
CSP = (
    "default-src 'none'; style-src 'sha256-{style}'; img-src 'none'; script-src 'none'; "
    "base-uri 'none'; form-action 'none'"
)


def in_scope(event: Event, environment: str | None, release: str | None) -> bool:
    if environment is not None and event.entry.environment != environment:
        return False
    about = {event.entry.release, event.entry.details.get("from"), *(r.release for r in event.records)}
    return release is None or release in about


def render(
    history: History,
    *,
    environment: str | None = None,
    release: str | None = None,
    limit: int = 1000,
    plans: Sequence[PlanRun] = (),
) -> str:
    """The page for one environment, one release, or everything (newest `limit` entries); with
    `plans`, the runs of a release plan (`report --plan`) as graphs."""
    events = [e for e in history.events if in_scope(e, environment, release)][-limit:]
    shown = [r for r in history.releases.values() if release in (None, r.id)]
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    scope = " ".join(
        x for x in (f"environment {environment}" if environment else "", f"release {release}" if release else "") if x
    )
    counts = {s: sum(1 for e in events if e.status == s) for s in ("verified", "refused", "unsigned")}
    head_seq, head_hash = history.head
    body = [
        f"<h1>Release report{escape(': ' + scope) if scope else ''}</h1>",
        f"<p>Ledger <code>{escape(history.source)}</code>, {len(history.events)} entries, head seq {head_seq} "
        f"<code>{escape(head_hash)}</code>; {len(events)} shown: {counts['verified']} "
        f"{badge('verified')}, {counts['refused']} {badge('refused')}, {counts['unsigned']} {badge('unsigned')}.</p>",
        "<p class='note'>Every signed record was verified against the identity policy before it was drawn. "
        "A ledger entry is the ledger's word (a job could write it) unless a verified record names a ledger "
        "head after it (<em>sealed</em>); a refused record is never shown as passed.</p>",
        releases(shown),
        custody(history, shown, environment),
        analyses(history, events),
        rollouts(events),
        switches(events),
        rollbacks(events),
        plan_runs_section(plans) or plans_of(history, events),
        timeline(events),
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP.replace('{style}', digest)}\">"
        "<meta name='referrer' content='no-referrer'>"
        f"<title>pipeline-kit release report</title><style>{STYLE}</style></head><body>"
        + "\n".join(part for part in body if part)
        + f"<p class='note'>pipeline-kit {escape(__version__)}</p></body></html>\n"
    )


def releases(shown: Sequence[ReleaseFacts]) -> str:
    if not shown:
        return "<h2>Releases</h2><p>No release is shown by a verified record.</p>"
    parts = ["<h2>Releases</h2>"]
    for facts in sorted(shown, key=lambda f: f.id):
        parts.append(f"<h3 id='release-{escape(facts.id)}'>{escape(facts.name or '?')} {escape(facts.version or '')} ")
        parts.append(
            f"<code>{escape(facts.id)}</code> {badge('verified' if facts.verified else 'refused', facts.why)}</h3>"
        )
        if not facts.verified:
            parts.append(f"<p>Its evidence does not verify: {escape(facts.why)}</p>")
            continue
        rows = "".join(
            f"<tr><td>{escape(n)}</td><td><code>{escape(d)}</code></td><td>{s if s is not None else ''}</td></tr>"
            for n, d, s in facts.subjects
        )
        parts.append(f"<table><tr><th>subject</th><th>sha256</th><th>bytes</th></tr>{rows}</table>")
        provenance = (
            ("repository", facts.repository),
            ("commit", facts.commit),
            ("ref", facts.ref),
            ("committed", f"{facts.committed_at:%Y-%m-%d %H:%M:%S%z}" if facts.committed_at else None),
            ("workflow / builder", facts.builder),
            ("invocation", facts.invocation),
        )
        cells = "".join(f"<tr><th>{k}</th><td><code>{escape(v or '-')}</code></td></tr>" for k, v in provenance)
        parts.append(f"<table class='provenance'>{cells}</table>")
        if facts.sbom is not None:
            licenses = ", ".join(f"{escape(name)} ({count})" for name, count in facts.sbom.licenses[:12])
            parts.append(
                f"<p>SBOM (CycloneDX {escape(facts.sbom.spec_version)}): {facts.sbom.components} components; "
                f"licences: {licenses or 'none declared'}</p>"
            )
    return "".join(parts)


def timeline(events: Sequence[Event]) -> str:
    rows = []
    for event in reversed(events):
        entry = event.entry
        signed = event.signed_at
        rows.append(
            f"<tr><td>{entry.seq}</td><td>{entry.time:%Y-%m-%d %H:%M:%S}Z</td>"
            f"<td>{f'{signed:%Y-%m-%d %H:%M:%S}Z' if signed else '-'}</td><td>{escape(entry.kind)}</td>"
            f"<td>{escape(entry.environment)}</td><td><code>{escape(entry.release or '')}</code></td>"
            f"<td>{escape(entry.actor)}</td><td>{escape((entry.reason or '')[:300])}</td>"
            f"<td>{event_status(event)}</td></tr>"
        )
    header = "<tr><th>seq</th><th>ledger time</th><th>signed at</th><th>kind</th><th>env</th><th>release</th>"
    header += "<th>actor</th><th>reason</th><th>evidence</th></tr>"
    return f"<h2>Ledger, newest first</h2><table class='timeline'>{header}{''.join(rows)}</table>"
