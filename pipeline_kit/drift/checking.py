"""Drift: what an environment runs (its probe's answer, per slot and weight in a rollout) against
what signed evidence says it should run (the release the signed timeline leaves there, its
evidence verified: the same finding rollback takes out). The ledger never names the expected
release; it only records each drift found, and when a drift was first seen."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pipeline_kit.drift.probe import Answer, Asking, ask, command_weights, quoted
from pipeline_kit.errors import UsageError
from pipeline_kit.evidence import SBOM_FILE, EvidenceDir
from pipeline_kit.ledger import Draft, Entry, arrived, in_flight
from pipeline_kit.models import RELEASE_ID
from pipeline_kit.promotion.model import Project, check_environment, history, now_utc
from pipeline_kit.promotion.shown import Timeline, signed_timeline, verified_evidence

State = Literal["in-sync", "drift", "unknown"]
DIGEST = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})")
VERSION = re.compile(r"v?([0-9][0-9A-Za-z.+_~-]{0,63})")  # starts with a digit: a word is no version


@dataclass(frozen=True)
class Expected:
    """The release signed evidence says the environment runs, with its verified evidence."""

    release: str
    subjects: frozenset[tuple[str, str]]  # (name, sha256), as verified
    version: str | None  # the signed SBOM's, the only version a probe's answer is held to
    since: datetime  # the signed event that left it there (an arrival, or a rollback to it)
    slot: str | None  # the slot a rollout made it live in, as signed
    evidence: EvidenceDir


@dataclass(frozen=True)
class Finding:
    slot: str | None  # None: the environment as a whole (no rollout)
    weight: int | None  # percent of requests the slot gets; None: no rollout, or unknown
    answer: str | None  # what the probe answered (quoted), None: nothing usable
    state: State | Literal["idle"]  # idle: a slot no request reaches, whatever it runs
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {"slot": self.slot, "weight": self.weight, "answer": self.answer, "state": self.state, "why": self.why}


@dataclass(frozen=True)
class Report:
    environment: str
    expected: Expected | None
    why: str  # why nothing is expected, when `expected` is None
    findings: tuple[Finding, ...]
    state: State
    since: datetime | None = None  # when this drift was first seen (the ledger's word: it decides nothing)
    entry: Entry | None = None  # the ledger entry recording it

    def summary(self) -> str:
        if self.expected is None:
            return f"{self.environment}: {self.state}: {self.why}"
        shown = [f"{f.slot + ': ' if f.slot else ''}{f.why}" for f in self.findings if f.state != "in-sync"]
        if self.why != "signed":  # why the state is not the findings' (a promotion under way)
            shown.insert(0, self.why)
        return f"{self.environment}: {self.state}: expected {self.expected.release}" + "".join(f"; {w}" for w in shown)

    def as_dict(self) -> dict[str, Any]:
        expected = self.expected
        return {
            "environment": self.environment,
            "state": self.state,
            "expected": None
            if expected is None
            else {
                "release": expected.release,
                "subjects": dict(sorted(expected.subjects)),
                "version": expected.version,
                "since": expected.since.isoformat(),
                "slot": expected.slot,
            },
            "why": self.why,
            "findings": [f.as_dict() for f in self.findings],
            "since": self.since.isoformat() if self.since else None,
            "ledger_seq": self.entry.seq if self.entry else None,
        }


def check(project: Project, environment: str, *, record: bool = True) -> Report:
    """Ask `environment` what it runs and compare it with what signed evidence says it should;
    the outcome is recorded in the ledger when it is not in sync (and when a drift ends)."""
    check_environment(project.config, environment)
    settings = project.config.environments[environment]
    if settings.probe is None:
        raise UsageError(
            f"environments.{environment}.probe: not configured",
            hint="add `probe: {url: https://.../version}` or `probe: {command: ...}` (docs/drift.md)",
        )
    if project.trust.policy is None:
        raise UsageError("no identity policy to tell from signatures what should run there")
    entries = history(project.ledger)
    expected, why = expected_release(project, environment, entries)
    findings = tuple(_findings(project, environment, expected))
    state = _overall(expected, findings)
    pending = in_flight(entries, environment)
    if state == "drift" and pending:  # a promotion under way moves what runs: not a drift yet
        state, why = "unknown", f"a promotion of {pending[-1].release} is under way (ledger seq {pending[-1].seq})"
    report = Report(environment, expected, why, findings, state)
    return _recorded(project, report, entries) if record else report


def expected_release(project: Project, environment: str, entries: Sequence[Entry]) -> tuple[Expected | None, str]:
    """The release the signed timeline leaves in `environment` (signed PASSED VSAs, signed
    rollbacks), its evidence verified; else None and why. A ledger line cannot name it."""
    timeline = signed_timeline(project, environment, entries)
    current = timeline.current
    if current is None:
        return None, timeline.why
    evidence, why = verified_evidence(project, entries, current)
    if evidence is None:
        return None, why
    release = evidence.load_release()
    arrival = timeline.arrival(current)
    return Expected(
        current,
        frozenset((s.name, s.sha256) for s in release.subjects),
        _signed_version(evidence),
        _since(timeline, current),
        arrival.slot if arrival else None,
        evidence,
    ), "signed"


def _since(timeline: Timeline, current: str) -> datetime:
    moments = [a.signed_at for a in timeline.arrivals if a.release == current]
    moments += [at for _, to, at, _, _ in timeline.holds if to == current]
    return max(moments)


def _signed_version(evidence: EvidenceDir) -> str | None:
    """The version in the SBOM's metadata component: the SBOM verified equal to its signed
    attestation (release.json's version is unsigned, and a probe is never held to it)."""
    try:
        component = json.loads(evidence.path(SBOM_FILE).read_bytes())["metadata"]["component"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    version = component.get("version") if isinstance(component, dict) else None
    return version if isinstance(version, str) and version else None


def judge(answer: Answer, expected: Expected | None) -> tuple[State, str]:
    """One answer against the expected release: a digest of one of its signed subjects, its
    release id, or its signed version is in sync; another digest, id or version is drift;
    anything else (nothing, garbage, a version with no signed one to hold it to) is unknown."""
    if answer.text is None:
        return "unknown", answer.why
    text, shown = answer.text, quoted(answer.text)
    if expected is None:
        return "unknown", f"answers {shown}; nothing signed says what should run"
    if digest := DIGEST.fullmatch(text):
        found = digest[1].lower()
        names = [name for name, sha in sorted(expected.subjects) if sha == found]
        if names:
            return "in-sync", f"runs {names[0]} (sha256:{found[:12]}...), as signed"
        return "drift", f"runs sha256:{found[:12]}..., no subject of {expected.release}"
    if RELEASE_ID.fullmatch(text):
        if text == expected.release:
            return "in-sync", f"runs {text}, as signed"
        return "drift", f"runs release {text}"
    if version := VERSION.fullmatch(text):
        if expected.version is None:
            return "unknown", f"answers version {shown}; no signed SBOM gives {expected.release}'s version"
        if version[1] == expected.version.removeprefix("v"):
            return "in-sync", f"runs version {expected.version}, as signed"
        return "drift", f"runs version {shown}, not {expected.version}"
    return "unknown", f"answered {shown!r}: neither a digest, a release id nor a version"


def _findings(project: Project, environment: str, expected: Expected | None) -> list[Finding]:
    from pipeline_kit.traffic import open_traffic

    settings = project.config.environments[environment]
    assert settings.probe is not None
    asking = Asking(settings.probe, project.workdir, project.config.secret_variables)
    if settings.strategy is None or settings.traffic is None:
        answer = ask(asking, environment, None)
        state, why = judge(answer, expected)
        return [Finding(None, None, quoted(answer.text) if answer.text is not None else None, state, why)]
    slots = {str(slot): address for slot, address in settings.traffic.slots.items()}
    weights = open_traffic(settings.traffic, project.workdir).weights(slots)
    if isinstance(weights, str) and settings.probe.weights is not None:
        weights = command_weights(asking, slots)
    findings = []
    for slot, address in sorted(slots.items()):
        answer = ask(asking, environment, (slot, address))
        state, why = judge(answer, expected)
        weight = weights.get(slot) if isinstance(weights, dict) else None
        shown = quoted(answer.text) if answer.text is not None else None
        if weight == 0:
            findings.append(Finding(slot, 0, shown, "idle", f"no traffic ({why})"))
        elif weight is None and state != "in-sync":
            findings.append(Finding(slot, None, shown, "unknown", f"{why}; whether it gets traffic: {weights}"))
        else:
            findings.append(Finding(slot, weight, shown, state, why))
    return findings


def _overall(expected: Expected | None, findings: Sequence[Finding]) -> State:
    states = {f.state for f in findings}
    if expected is None or not findings:
        return "unknown"
    if "drift" in states:
        return "drift"
    if "unknown" in states or "in-sync" not in states:  # every slot idle serves nothing we know
        return "unknown"
    return "in-sync"


def _recorded(project: Project, report: Report, entries: Sequence[Entry]) -> Report:
    """`report` appended to the ledger (kind `drift`) when it is not in sync, or when it ends a
    drift; with since when this drift has been seen (the first of an unbroken run of them)."""
    environment = report.environment
    run: list[Entry] = []
    for entry in reversed(entries):
        if entry.environment != environment:
            continue
        if entry.kind == "drift" and entry.details.get("state") in ("drift", "unknown"):
            run.append(entry)
        elif entry.kind == "drift" or arrived(entry) or entry.kind in ("rolled-back", "reconciled"):
            break
    if report.state == "in-sync" and not run:
        return report
    expected = report.expected
    entry = project.ledger.append(
        Draft(
            kind="drift",
            environment=environment,
            release=expected.release if expected else None,
            subjects=dict(sorted(expected.subjects)) if expected else {},
            actor=project.actor,
            time=now_utc(),
            reason=report.summary()[:500],
            details={"state": report.state, "findings": [f.as_dict() for f in report.findings]},
        )
    )
    since = None if report.state == "in-sync" else run[-1].time if run else entry.time
    return Report(environment, expected, report.why, report.findings, report.state, since, entry)
