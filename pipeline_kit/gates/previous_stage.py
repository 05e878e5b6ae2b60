"""previous-stage: the release reached the environment before this one (`after:`) and lived
there for `soak:` without being replaced, rolled back or failing to deploy there first.

History comes from the ledger and, when the run has a forge, from the forge's deployment records
too, so a promotion in one pipeline sees what earlier pipelines did. A forge that cannot be read
is an error: the release may have been replaced since.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pipeline_kit.config import parse_duration
from pipeline_kit.gates.interface import Gate, Outcome, PromotionContext, denied, error, passed

ARRIVALS = ("promoted", "waived")


@dataclass(frozen=True)
class Event:
    time: datetime
    kind: Literal["arrived", "left", "failed"]
    source: str


def _short(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def timeline(context: PromotionContext, environment: str) -> list[Event]:
    """What happened to this release in `environment`, oldest first, from every source."""
    release = context.release
    events = []
    for entry in context.history:
        if entry.environment != environment:
            continue
        if entry.kind in ARRIVALS:
            kind: Literal["arrived", "left", "failed"] = "arrived" if entry.release == release.id else "left"
            events.append(Event(entry.time, kind, f"ledger seq {entry.seq}"))
        elif entry.kind == "rolled-back":  # the environment went back to `entry.release`
            kind = "arrived" if entry.release == release.id else "left"
            events.append(Event(entry.time, kind, f"ledger seq {entry.seq}"))
        elif entry.kind == "deploy-failed" and entry.release == release.id:
            events.append(Event(entry.time, "failed", f"ledger seq {entry.seq}"))
    if context.forge is not None:
        for record in context.forge.deployments(environment):
            ours = record.release == release.id if record.release else record.sha == release.source.commit
            source = f"{context.forge.name} deployment"
            if record.state == "success":
                events.append(Event(record.time, "arrived" if ours else "left", source))
            elif record.state in ("failure", "error") and ours:
                events.append(Event(record.time, "failed", source))
    return sorted(events, key=lambda event: event.time)


class PreviousStageGate(Gate):
    name = "previous-stage"

    def evaluate(self, context: PromotionContext) -> Outcome:
        environment = context.config.environments.get(context.environment)
        if environment is None:
            return error(f"no environment {context.environment!r} in the config")
        after = environment.after
        if after is None:
            return passed(f"{context.environment} is the first environment")
        release = context.release
        events = timeline(context, after)
        arrivals = [e for e in events if e.kind == "arrived"]
        if not arrivals:
            digest = release.subjects[0].sha256
            return denied(f"{after} never received this release ({release.id}, sha256:{digest[:12]}...)")
        arrived = arrivals[-1]
        later = [e for e in events if e.time > arrived.time]
        if any(e.kind == "failed" for e in later):
            return denied(f"the deploy of {release.id} to {after} failed")
        left = next((e for e in later if e.kind == "left"), None)
        soak = parse_duration(environment.soak) if environment.soak else timedelta(0)
        lived = (left.time if left else context.now) - arrived.time
        evidence = {
            "after": after,
            "arrived": arrived.time.isoformat(),
            "source": arrived.source,
            "soak": environment.soak,
        }
        if lived >= soak:
            return passed(
                f"in {after} since {arrived.time:%Y-%m-%d %H:%MZ} ({_short(lived)}, soak {environment.soak or 'none'})",
                **evidence,
            )
        if left is not None:
            return denied(
                f"left {after} after {_short(lived)} (at {left.time:%H:%MZ}, {left.source}); "
                f"soak is {environment.soak}",
                **evidence,
            )
        ready = arrived.time + soak
        return denied(
            f"soak {_short(lived)} of {environment.soak} in {after}, ready at {ready:%H:%MZ}",
            ready=ready.isoformat(),
            **evidence,
        )
