"""What the ledger and the evidence dir keep of a rollout: its state (the newest `rollout`
entries of an environment), the slots, where its records and signed steps live."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline_kit.analysis import Analysis
from pipeline_kit.digest import sha256_bytes
from pipeline_kit.errors import PipelineKitError, Stopped, UsageError, VerificationError
from pipeline_kit.evidence import PROMOTIONS_DIR, EvidenceDir
from pipeline_kit.ledger import Entry, Guard
from pipeline_kit.models import Release
from pipeline_kit.promotion.model import Project, history
from pipeline_kit.promotion.shown import signed_timeline

State = Literal["started", "step", "paused", "finished", "failed", "aborted"]
SLOTS = ("blue", "green")
ACTIVE: tuple[State, ...] = ("started", "step", "paused")
MOVES: tuple[State, ...] = ("step", "paused", "finished", "failed", "aborted")  # what follows a start


def rollout_file(environment: str) -> str:
    """Where a rollout's steps and measurements are kept in the evidence dir."""
    return f"{PROMOTIONS_DIR}/{environment}.rollout.json"


@dataclass(frozen=True)
class Rollout:
    """The newest rollout of an environment, as the ledger records it (where it stands; what it
    may sign is decided from signed steps, see `rollout.Runner.signed`)."""

    environment: str
    release: str
    stable_slot: str
    canary_slot: str
    stable_release: str | None
    state: State
    step: int  # the step in progress (or paused at); -1 before the first
    weight: int
    started: Entry
    first: bool = False  # nothing ran in the environment: all traffic to the canary at once

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "release": self.release,
            "state": self.state,
            "step": self.step,
            "weight": self.weight,
            "stable_slot": self.stable_slot,
            "canary_slot": self.canary_slot,
            "stable_release": self.stable_release,
            "first": self.first,
            "started": self.started.time.isoformat(),
        }


def _slot(value: object) -> str | None:
    return value if isinstance(value, str) and value in SLOTS else None


def _number(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def live_slot(entries: Sequence[Entry], environment: str) -> str:
    """The slot that takes the traffic: the canary slot of the last finished rollout, else blue."""
    for entry in reversed(entries):
        if entry.environment == environment and entry.kind == "rollout" and entry.details.get("state") == "finished":
            return _slot(entry.details.get("canary_slot")) or SLOTS[0]
    return SLOTS[0]


def current(entries: Sequence[Entry], environment: str) -> Rollout | None:
    """The newest rollout of `environment`, or None. A line that does not read as a rollout's
    (a slot, a state or a step of the wrong kind) is not one: it neither starts nor moves one."""
    started = None
    for index in range(len(entries) - 1, -1, -1):
        entry = entries[index]
        details = entry.details
        if (
            entry.environment == environment
            and entry.kind == "rollout"
            and details.get("state") == "started"
            and entry.release is not None
            and _slot(details.get("stable_slot")) is not None
            and _slot(details.get("canary_slot")) not in (None, details.get("stable_slot"))
        ):
            started = index
            break
    if started is None:
        return None
    first = entries[started]
    state: State = "started"
    step, weight = -1, 0
    for entry in entries[started + 1 :]:
        if entry.environment != environment or entry.release != first.release:
            continue
        if entry.kind == "rollout" and entry.details.get("state") in MOVES:
            state = entry.details["state"]
            step = _number(entry.details.get("step"), step)
            weight = _number(entry.details.get("weight"), weight)
            if state not in ACTIVE:
                break  # finished, failed or aborted: no later line makes it go on
    stable = first.details.get("stable_release")
    return Rollout(
        environment=environment,
        release=str(first.release),
        stable_slot=str(first.details["stable_slot"]),
        canary_slot=str(first.details["canary_slot"]),
        stable_release=stable if isinstance(stable, str) else None,
        state=state,
        step=step,
        weight=weight,
        started=first,
        first=first.details.get("first") is True,
    )


def refuse_second(entries: Sequence[Entry], environment: str) -> None:
    """A lock, as GitLab's resource_group: one rollout of an environment at a time."""
    running = current(entries, environment)
    if running is not None and running.active:
        raise UsageError(
            f"a rollout of {running.release} is {running.state} in {environment} (step {running.step + 1}): "
            "finish it first",
            hint=f"pipeline-kit rollout resume --env {environment}, or rollout abort --env {environment}",
        )


def refuse_unshown(rollout: Rollout, shown: str | None, slot: str | None) -> None:
    """What the rollout's line says ran there decides its steps (nothing: one step at 100%), the
    signed rollback's target on a failure and where the traffic goes: it must be what the signed
    record shows (`shown`, live in `slot` when its VSA names one)."""
    if slot is not None and rollout.stable_slot != slot:
        raise VerificationError(
            f"the rollout of {rollout.release} in {rollout.environment} says {rollout.stable_slot} is live, but "
            f"the signed record shows {shown} live in {slot}: it is not resumed",
            hint=f"pipeline-kit rollout abort --env {rollout.environment} (the traffic goes to {slot}), then "
            "promote again",
        )
    if (rollout.first and shown is not None) or (not rollout.first and rollout.stable_release != shown):
        said = "nothing" if rollout.first else rollout.stable_release or "nothing signed"
        raise VerificationError(
            f"the rollout of {rollout.release} in {rollout.environment} says {said} ran there, but the signed "
            f"record shows {shown or 'none'}: it is not resumed",
            hint=f"pipeline-kit rollout abort --env {rollout.environment}, then promote again",
        )


def unclaimed(environment: str, live: str) -> Guard:
    """The guard on a rollout's start: none in progress there, and the live slot still `live`.
    Of two promotions starting at once, one records its start; the other is refused (exit 2)."""

    def guard(entries: Sequence[Entry]) -> None:
        refuse_second(entries, environment)
        if live_slot(entries, environment) != live:
            raise UsageError(f"another rollout in {environment} finished while this one started: promote again")

    return guard


def last_move(entries: Sequence[Entry], rollout: Rollout) -> int:
    """The seq of the newest entry that moves `rollout` on (a state, a signed step)."""
    return max(
        (
            e.seq
            for e in entries
            if e.seq >= rollout.started.seq
            and e.environment == rollout.environment
            and e.release == rollout.release
            and e.kind in ("rollout", "rollout-step")
        ),
        default=rollout.started.seq,
    )


def still_running(rollout: Rollout, since: int) -> Guard:
    """The guard on every later entry of the job running `rollout`: it is still the newest one and
    in progress (an abort recorded meanwhile stops the job at its next entry, exit 1), and no other
    job moved it on since `since`, the seq of this job's last entry (of two jobs resuming one
    rollout, the first to write goes on; the other stops)."""

    def guard(entries: Sequence[Entry]) -> None:
        now = current(entries, rollout.environment)
        if now is None or now.started.seq != rollout.started.seq or not now.active:
            state = now.state if now is not None and now.started.seq == rollout.started.seq else "replaced"
            raise Stopped(
                f"the rollout of {rollout.release} in {rollout.environment} was {state} while this job ran: "
                "it stops here, and nothing more is signed"
            )
        if last_move(entries, rollout) > since:
            raise Stopped(
                f"another job went on with the rollout of {rollout.release} in {rollout.environment}: this one "
                "stops here, and signs nothing more"
            )

    return guard


def abortable(rollout: Rollout) -> Guard:
    """The guard on an abort: the rollout is still in progress (not finished, failed or aborted
    by another job meanwhile). Its job's finish is one guarded entry, so one of the two wins."""

    def guard(entries: Sequence[Entry]) -> None:
        now = current(entries, rollout.environment)
        if now is None or now.started.seq != rollout.started.seq or not now.active:
            raise UsageError(f"no rollout in progress in {rollout.environment}")

    return guard


@dataclass
class Outcome:
    rollout: Rollout
    verdict: Literal["finished", "paused", "stepped", "stopped", "failed", "aborted"]  # stopped: the org's line
    reason: str
    analyses: list[tuple[int, Analysis]] = field(default_factory=list)
    aftermath: tuple[str, ...] = ()


def live(project: Project, environment: str) -> tuple[str | None, str | None]:
    """The release the signed record shows in `environment` and the slot its VSA names (None: a
    VSA signed before 0.2, or no rollout)."""
    timeline = signed_timeline(project, environment, history(project.ledger))
    arrival = timeline.arrival(timeline.current) if timeline.current is not None else None
    return timeline.current, arrival.slot if arrival is not None and arrival.slot in SLOTS else None


def keep_analysis(
    evidence: EvidenceDir,
    release: Release,
    environment: str,
    index: int,
    weight: int,
    analysis: Analysis,
    say: Callable[[str], None],
) -> str:
    """Add step `index`'s analysis to the rollout record in the evidence dir; returns its digest.
    What a planted or stale file says is never merged in; a failed step whose record cannot be
    written is said, and handled all the same (traffic back, kill switches, the signed hold)."""
    data, _ = evidence.read_checked(rollout_file(environment))
    try:
        kept = json.loads(data) if data is not None else {}
    except (ValueError, RecursionError):
        kept = {}
    ours = isinstance(kept, dict) and kept.get("release") == release.id
    steps: dict[str, Any] = kept["steps"] if ours and isinstance(kept.get("steps"), dict) else {}
    steps[str(index)] = {"weight": weight, **analysis.as_dict()}
    record = json.dumps({"release": release.id, "environment": environment, "steps": steps}, indent=2, sort_keys=True)
    try:
        evidence.record_many(release, {rollout_file(environment): record.encode()})
    except (PipelineKitError, OSError) as exc:
        if analysis.passed:
            raise
        say(f"  the analysis record could not be written ({exc}); the failure is handled all the same")
    return sha256_bytes(record.encode())
