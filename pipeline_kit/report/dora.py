"""The numbers of delivery, per environment over a window, from the verified history only: the
four DORA keys (deployment frequency, lead time for changes, change failure rate, time to
restore) and the timing table (time to deploy, failing measurement to traffic back on stable).

Where each time comes from (docs/report.md says the same):
- an arrival is a verified VSA there (PASSED, or waived), at its verified signing time; a release
  that failed there before any VSA (its analysis failed) arrived with its deploy, at the time of a
  ledger entry a signed record seals (`Event.sealed`): its signed rollback names a later head;
- lead time: from the commit time the release's verified provenance signs to its arrival;
- a failure: an arrival its signed rollback (for cause, not a release plan's compensation) took
  out, or whose sealed analysis failed; time to restore: from that arrival to the signed rollback;
- time to deploy: from the sealed promotion decision to the arrival (promotions that deploy);
- failing measurement to stable: from the sealed failed analysis (or failed rollout) to the
  signed rollback, which is signed once traffic is back on the stable release.
Anything that does not verify, or a time only an unsealed ledger line gives, is counted out and
listed, never counted.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pipeline_kit.report.history import Event, History, Record
from pipeline_kit.vsa import hold_level

_ARRIVING = ("promoted", "waived", "deployed", "analysed", "rollout")
_DEPLOYED = ("deployed", "canary-deployed")


@dataclass(frozen=True)
class Arrival:
    release: str
    at: datetime
    seq: int
    failed_before_vsa: bool = False  # arrived by its deploy, and was rolled back before any VSA


@dataclass(frozen=True)
class Durations:
    seconds: tuple[float, ...]

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    def as_dict(self) -> dict[str, Any]:
        return {"count": len(self.seconds), "median_seconds": self.median, "seconds": list(self.seconds)}


@dataclass(frozen=True)
class Figures:
    environment: str
    deployments: int
    per_day: float
    failures: int
    lead_time: Durations
    time_to_restore: Durations
    time_to_deploy: Durations
    failure_to_stable: Durations

    @property
    def change_failure_rate(self) -> float | None:
        return self.failures / self.deployments if self.deployments else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "deployments": self.deployments,
            "deployments_per_day": self.per_day,
            "failures": self.failures,
            "change_failure_rate": self.change_failure_rate,
            "lead_time": self.lead_time.as_dict(),
            "time_to_restore": self.time_to_restore.as_dict(),
            "time_to_deploy": self.time_to_deploy.as_dict(),
            "failure_to_stable": self.failure_to_stable.as_dict(),
        }


@dataclass(frozen=True)
class Delivery:
    since: datetime
    until: datetime
    environments: tuple[Figures, ...]
    counted_out: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "environments": {f.environment: f.as_dict() for f in self.environments},
            "counted_out": list(self.counted_out),
        }


def delivery(history: History, since: datetime, until: datetime, environments: tuple[str, ...] = ()) -> Delivery:
    """The figures of each environment (all, unless named) for arrivals in [since, until)."""
    out: list[str] = []
    figures = tuple(
        _figures(history, environment, since, until, out) for environment in environments or history.environments
    )
    return Delivery(since, until, figures, tuple(out))


def _holds(events: list[Event]) -> list[tuple[Event, Record]]:
    return [(e, r) for e in events for r in e.records if r.kind == "hold" and r.verified]


def _arrivals(events: list[Event], environment: str, out: list[str]) -> list[Arrival]:
    arrivals = [
        Arrival(r.release, r.signed_at, e.entry.seq)
        for e in events
        if e.entry.kind in _ARRIVING
        for r in e.records
        if r.kind == "vsa" and r.verified and r.release and r.signed_at
    ]
    for event, hold in _holds(events):
        bad = hold.release
        if any(a.release == bad and a.seq < event.entry.seq for a in arrivals):
            continue  # arrived by a VSA: that arrival is the failing one
        deploy = next(
            (
                e
                for e in reversed(events)
                if e.entry.seq < event.entry.seq and e.entry.release == bad and e.entry.kind in _DEPLOYED
            ),
            None,
        )
        if deploy is None:
            out.append(
                f"{environment}: ledger seq {event.entry.seq}: a signed rollback of {bad}, no deploy of it found"
            )
        elif not deploy.sealed:
            out.append(f"{environment}: ledger seq {deploy.entry.seq}: the deploy of {bad} is sealed by no signature")
        elif bad is not None:
            arrivals.append(Arrival(bad, deploy.entry.time, deploy.entry.seq, failed_before_vsa=True))
    return sorted(arrivals, key=lambda a: (a.at, a.seq))


def _figures(history: History, environment: str, since: datetime, until: datetime, out: list[str]) -> Figures:
    events = history.of(environment)
    out.extend(
        f"{environment}: ledger seq {e.entry.seq} ({e.entry.kind}): {e.refusal()}"
        for e in events
        if e.status == "refused" and since <= e.entry.time < until
    )
    arrivals = [a for a in _arrivals(events, environment, out) if since <= a.at < until]
    holds = [(e, r) for e, r in _holds(events) if hold_level(environment) in r.levels]
    lead, restore, deploy, stable = [], [], [], []
    failures = 0
    for arrival in arrivals:
        facts = history.releases.get(arrival.release)
        if facts is None or facts.committed_at is None:
            why = facts.why if facts is not None and not facts.verified else "its provenance signs no commit time"
            out.append(f"{environment}: lead time of {arrival.release}: {why}")
        else:
            lead.append((arrival.at - facts.committed_at).total_seconds())
        decided = _sealed_before(events, arrival, ("promoted", "waived"))
        if decided is not None and decided.entry.details.get("deploy", "none") != "none":
            deploy.append((arrival.at - decided.entry.time).total_seconds())
        held = next(
            (r for _, r in holds if r.release == arrival.release and r.signed_at and r.signed_at >= arrival.at), None
        )
        failed = _sealed_after(events, arrival)
        if held is None and failed is None:
            continue
        failures += 1
        if held is not None and held.signed_at is not None:
            restore.append((held.signed_at - arrival.at).total_seconds())
            if failed is not None:
                stable.append((held.signed_at - failed.entry.time).total_seconds())
    days = (until - since) / timedelta(days=1)
    return Figures(
        environment,
        len(arrivals),
        len(arrivals) / days if days > 0 else 0.0,
        failures,
        Durations(tuple(lead)),
        Durations(tuple(restore)),
        Durations(tuple(deploy)),
        Durations(tuple(stable)),
    )


def _sealed_before(events: list[Event], arrival: Arrival, kinds: tuple[str, ...]) -> Event | None:
    """The newest sealed entry of `kinds` about the arrival's release at or before it."""
    return next(
        (
            e
            for e in reversed(events)
            if e.entry.seq <= arrival.seq and e.entry.release == arrival.release and e.entry.kind in kinds and e.sealed
        ),
        None,
    )


def _sealed_after(events: list[Event], arrival: Arrival) -> Event | None:
    """A sealed failed analysis (or failed rollout) of the arrival's release after its deploy."""
    for e in events:
        if e.entry.seq < arrival.seq or e.entry.release != arrival.release or not e.sealed:
            continue
        details = e.entry.details
        if (e.entry.kind == "analysed" and details.get("verdict") != "passed") or (
            e.entry.kind == "rollout" and details.get("state") == "failed"
        ):
            return e
    return None
