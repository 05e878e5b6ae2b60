"""What the ledger and the evidence dir keep of a rollout: its state (the newest `rollout`
entries of an environment), the slots, where its records and signed steps live."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline_kit.analysis import Analysis
from pipeline_kit.errors import UsageError
from pipeline_kit.evidence import PROMOTIONS_DIR
from pipeline_kit.ledger import Entry

State = Literal["started", "step", "paused", "finished", "failed", "aborted"]
SLOTS = ("blue", "green")
ACTIVE: tuple[State, ...] = ("started", "step", "paused")


def rollout_file(environment: str) -> str:
    """Where a rollout's steps and measurements are kept in the evidence dir."""
    return f"{PROMOTIONS_DIR}/{environment}.rollout.json"


STEP_PREDICATE = "https://pipeline-kit.dev/rollout-step/v1"  # a signed pass of one rollout step


def step_bundle(environment: str, index: int) -> str:
    """Where the signed pass of a rollout's step `index` lives in the evidence dir."""
    return f"{PROMOTIONS_DIR}/{environment}.step-{index}.sigstore.json"


@dataclass(frozen=True)
class Rollout:
    """The newest rollout of an environment, as the ledger records it."""

    environment: str
    release: str
    stable_slot: str
    canary_slot: str
    stable_release: str | None
    state: State
    step: int  # the step in progress (or paused at); -1 before the first
    weight: int
    started: Entry

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
            "started": self.started.time.isoformat(),
        }


def live_slot(entries: Sequence[Entry], environment: str) -> str:
    """The slot that takes the traffic: the canary slot of the last finished rollout, else blue."""
    for entry in reversed(entries):
        if entry.environment == environment and entry.kind == "rollout" and entry.details.get("state") == "finished":
            return str(entry.details["canary_slot"])
    return SLOTS[0]


def current(entries: Sequence[Entry], environment: str) -> Rollout | None:
    """The newest rollout of `environment`, or None."""
    started = None
    for index in range(len(entries) - 1, -1, -1):
        entry = entries[index]
        if entry.environment == environment and entry.kind == "rollout" and entry.details.get("state") == "started":
            started = index
            break
    if started is None:
        return None
    first = entries[started]
    details = first.details
    state: State = "started"
    step, weight = -1, 0
    for entry in entries[started:]:
        if entry.environment == environment and entry.release == first.release and entry.kind == "rollout":
            state = entry.details["state"]
            step = int(entry.details.get("step", step))
            weight = int(entry.details.get("weight", weight))
    return Rollout(
        environment=environment,
        release=str(first.release),
        stable_slot=str(details["stable_slot"]),
        canary_slot=str(details["canary_slot"]),
        stable_release=details.get("stable_release"),
        state=state,
        step=step,
        weight=weight,
        started=first,
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


@dataclass
class Outcome:
    rollout: Rollout
    verdict: Literal["finished", "paused", "stepped", "failed", "aborted"]
    reason: str
    analyses: list[tuple[int, Analysis]] = field(default_factory=list)
    aftermath: tuple[str, ...] = ()
