"""What a job summary draws (report.mermaid charts) and what `plan` and `run --dry-run` say happens
after the gates: from what this job decided and did, in the promotion's own words.

- `environments_chart`: the environments in their order; the target with this job's verdict (and
  its deploy, analysis or rollout), the one it comes after with what its previous-stage gate
  verified; the others are not judged by this job and say so.
- `rollout_chart`: a rollout's steps with their weights and each one's state.
- `plan_chart`: a release plan's services as their DAG, each with its step's state.
- `after_gates`: the deploy command, the strategy, the analysis and what a failure does.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pipeline_kit.report.mermaid import Flowchart, Node, chain, graph

if TYPE_CHECKING:
    from pipeline_kit.config import Config, EnvironmentConfig
    from pipeline_kit.promotion.arriving import Promotion
    from pipeline_kit.promotion.deciding import Plan
    from pipeline_kit.promotion.rollout_record import Outcome
    from pipeline_kit.release_plan import ReleasePlan

NOT_JUDGED = "not judged by this job"


def environments_chart(config: Config, plan: Plan, promotion: Promotion | None = None) -> Flowchart:
    """Every environment in order: `plan`'s target with its verdict (a dry run's, or what
    `promotion` decided and did), the environment it comes after with what its gate verified."""
    target = plan.environment
    before = config.environments[target].after
    named = []
    for name in config.environment_order():
        if name == target:
            node = _target(plan, promotion)
        elif name == before:
            node = _before(name, plan)
        else:
            node = Node((name, NOT_JUDGED), "waiting")
        after = config.environments[name].after
        named.append((name, node, [after] if after else []))
    return graph(named)


def _target(plan: Plan, promotion: Promotion | None) -> Node:
    head = (plan.environment, f"release {plan.release.id[:12]}")
    blocking = [r.gate for r in plan.blocking()]
    if promotion is None:
        if plan.passed:
            return Node((*head, "would pass its gates"), "passed")
        return Node((*head, f"would be DENIED: {', '.join(blocking)}"), "failed")
    verdict = promotion.decision.verdict
    if verdict == "denied":
        return Node((*head, f"DENIED: {', '.join(blocking)}"), "failed")
    gates = "gates waived (break glass)" if verdict == "waived" else "gates passed"
    state, done = _arrival(promotion)
    return Node((*head, gates, done), "error" if verdict == "waived" and state == "passed" else state)


def _arrival(promotion: Promotion) -> tuple[str, str]:
    """(state, words) of what happened after the gates."""
    outcome = promotion.rollout
    if outcome is not None:
        rollout = outcome.rollout
        words = {
            "finished": ("passed", "arrived: rollout finished"),
            "paused": ("running", f"rollout paused at step {rollout.step + 1} ({rollout.weight}%)"),
            "stopped": ("error", f"rollout paused by the org's line at step {rollout.step + 1} ({rollout.weight}%)"),
            "stepped": ("running", f"rollout at step {rollout.step + 1} ({rollout.weight}%)"),
            "failed": ("failed", "rollout failed: traffic back to stable"),
            "aborted": ("failed", "rollout aborted"),
        }
        return words[outcome.verdict]
    analysis = promotion.analysis
    if analysis is not None:
        if analysis.passed:
            return "passed", "arrived: analysis passed"
        return "failed", f"analysis {analysis.verdict}" + (": rolled back" if promotion.aftermath else "")
    if promotion.deployed is None and promotion.entry.details.get("deploy") == "pending":
        return "running", "decided: deploy pending in another job"
    return "passed", "arrived" + (": deployed" if promotion.deployed else "")


def _before(name: str, plan: Plan) -> Node:
    gate = next((r for r in plan.results if r.gate == "previous-stage"), None)
    if gate is None:
        return Node((name, NOT_JUDGED), "waiting")
    if gate.verdict == "passed":
        return Node((name, "verified: its signed VSA for this release"), "passed")
    # denied: not there yet, or not soaked (the gate says which); error: could not tell
    return Node((name, gate.reason), "waiting" if gate.verdict == "denied" else "error")


def rollout_chart(config: Config, environment: str, outcome: Outcome) -> Flowchart:
    """The rollout's steps (one, all at once, for a first rollout), each with its weight and
    state; a failed one ends in what was done about it."""
    rollout = outcome.rollout
    settings = config.environments[environment]
    steps = [(100, None)] if rollout.first or settings.strategy is None else _steps(settings)
    analysed = dict(outcome.analyses)
    nodes = []
    for index, (weight, pause) in enumerate(steps):
        lines = [f"step {index + 1}: {weight}%"] + ([f"pause {pause}"] if pause else [])
        if index in analysed:
            lines.append(f"analysis {analysed[index].verdict}")
        nodes.append(Node(tuple(lines), _step_state(outcome, index)))
    if outcome.verdict in ("failed", "aborted"):
        nodes.append(Node(("then", *(outcome.aftermath[:4] or ("traffic back to stable",))), "error"))
    return chain(nodes)


def _steps(settings: EnvironmentConfig) -> list[tuple[int, str | None]]:
    assert settings.strategy is not None
    return [(step.weight, step.pause) for step in settings.strategy.steps()]


def _step_state(outcome: Outcome, index: int) -> str:
    current = outcome.rollout.step
    if outcome.verdict == "finished" or index < current:
        return "passed"
    if index > current:
        return "waiting"
    return {"paused": "running", "stopped": "error", "stepped": "passed"}.get(outcome.verdict, "failed")


def plan_chart(plan: ReleasePlan, states: Mapping[str, tuple[str, str]]) -> Flowchart:
    """The plan's services as their DAG (top down), each with (state, words) from `states`, or
    not run."""
    named = []
    for step in plan.steps:
        state, words = states.get(step.service, ("waiting", "not run"))
        named.append((step.service, Node((step.service, words), state), step.needs))
    return graph(named, direction="TD")


def after_gates(config: Config, environment: str, deploy: Sequence[str] | None = None) -> list[str]:
    """What happens once the gates pass: deploy, strategy, analysis, and what a failure does."""
    settings = config.environments[environment]
    command = list(deploy) if deploy else settings.deploy
    said = []
    if not command:
        said.append("deploy: no deploy command: the release arrives once its VSA is signed")
    else:
        shown = command if isinstance(command, str) else shlex.join(command)
        said.append(f"deploy: {shown}")
    strategy = settings.strategy
    if strategy is not None:
        kind = "canary" if strategy.canary is not None else "blue-green"
        steps = " -> ".join(f"{w}%" + (f" (pause {p})" if p else "") for w, p in _steps(settings))
        traffic = settings.traffic.type if settings.traffic else "?"
        said.append(f"rollout: {kind}, {steps}, traffic set by {traffic} (a first rollout: all at once)")
    analysis = settings.analysis
    if analysis is not None:
        checks = ", ".join(check.name for check in analysis.checks)
        each = " at each step" if strategy is not None else ""
        said.append(
            f"analysis{each}: {analysis.count} x every {analysis.interval} on {analysis.provider}: {checks}; "
            "no data is never a pass"
        )
    said.append(f"on failure: {_on_failure(settings)}")
    return said


def _on_failure(settings: EnvironmentConfig) -> str:
    switches = settings.on_failure.kill_switches
    off = f"kill switches off ({', '.join(switches)}), " if switches else ""
    if settings.strategy is not None:
        return f"traffic back to the stable slot, {off}a signed rollback holds the release out"
    if settings.analysis is not None:
        back = "a signed rollback to the previous good release" if settings.on_failure.rollback else "no rollback"
        return f"{off}{back}; the release is held until a root cause is recorded"
    return "a failed deploy fails the promotion (exit 1); `pipeline-kit rollback` goes back"
