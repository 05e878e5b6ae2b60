"""A release plan's runs as the report draws them: the plan's services with their `needs` (from
the plan file, named by the digest its saga lines carry), each step's state as the plan's ledger
records it (the ledger's word), and whether the service's own ledger holds a verified arrival of
the release that step promoted (a signed VSA there: the only thing that makes a step passed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline_kit.promotion.model import Project, history
from pipeline_kit.release_plan import LoadedPlan
from pipeline_kit.report.history import History, load_history

Arrived = Literal["verified", "refused", "none"]


@dataclass(frozen=True)
class PlanNode:
    service: str
    needs: tuple[str, ...]
    state: str  # pending, step-done, step-failed, compensated, ...: the plan ledger's word
    release: str | None
    arrived: Arrived  # a verified VSA about `release` in the environment, in the service's ledger
    why: str


@dataclass(frozen=True)
class PlanRun:
    environment: str
    digest: str
    outcome: str  # finished, failed, or "" while it runs
    nodes: tuple[PlanNode, ...]


def plan_runs(loaded: LoadedPlan, project_for: Callable[[Path], Project]) -> list[PlanRun]:
    """The newest run of the plan to each environment its ledger (chain verified) records."""
    entries = [e for e in history(loaded.ledger()) if e.kind == "saga" and e.details.get("plan") == loaded.digest]
    runs: dict[str, list[dict[str, str | None]]] = {}
    for entry in entries:
        state, service = entry.details.get("state"), entry.details.get("service")
        if state == "started":
            runs[entry.environment] = []
        runs.setdefault(entry.environment, []).append(
            {"state": str(state), "service": service if isinstance(service, str) else None, "release": entry.release}
        )
    histories: dict[str, History] = {}

    def arrival(service: str, environment: str, release: str | None) -> tuple[Arrived, str]:
        if release is None:
            return "none", "no release promoted"
        if service not in histories:
            step = next(s for s in loaded.plan.steps if s.service == service)
            histories[service] = load_history(project_for(loaded.directory(step)), releases=False)
        for event in reversed(histories[service].of(environment)):
            for record in event.records:
                if record.kind == "vsa" and record.release == release:
                    return ("verified", record.why) if record.verified else ("refused", record.why)
        return "none", f"no signed arrival of {release} in {environment} in {service}'s ledger"

    found = []
    for environment, lines in runs.items():
        states: dict[str, tuple[str, str | None]] = {}
        outcome = ""
        for line in lines:
            if line["service"] is None:
                outcome = line["state"] if line["state"] in ("finished", "failed") else outcome
            else:
                previous = states.get(line["service"], ("", None))[1]
                states[line["service"]] = (str(line["state"]), line["release"] or previous)
        nodes = []
        for step in loaded.plan.order():
            state, release = states.get(step.service, ("pending", None))
            arrived, why = arrival(step.service, environment, release)
            nodes.append(PlanNode(step.service, tuple(step.needs), state, release, arrived, why))
        found.append(PlanRun(environment, loaded.digest, outcome, tuple(nodes)))
    return found
