"""Arriving: one promotion from its decision to its signed arrival (see docs/promotion.md).

promote = verify the evidence, evaluate every gate (concurrently, each with a timeout), write
the decision, append it to the ledger, deploy, and sign the SLSA VSA for the environment once the
release arrived (its deploy succeeded; its analysis, or its rollout's last step, passed). Every
step that can fail closed does: a gate error denies, a ledger that does not verify stops
everything, a VSA that cannot be signed means nothing arrived.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pipeline_kit.digest import sha256_bytes
from pipeline_kit.errors import BuildFailed, PipelineKitError, UsageError
from pipeline_kit.gates.stop_the_line import StopTheLineGate
from pipeline_kit.ledger import Draft, Entry
from pipeline_kit.promotion import rollout_record
from pipeline_kit.promotion.deciding import Decided, Plan, decide, plan
from pipeline_kit.promotion.deploying import run_deploy
from pipeline_kit.promotion.model import (
    Decision,
    Project,
    TokenProvider,
    check_environment,
    decision_file,
    history,
    now_utc,
    refuse_command_elsewhere,
)
from pipeline_kit.promotion.records import finish_forge_deployment, record_on_forge, sign_vsa, start_forge_deployment
from pipeline_kit.promotion.remediation import after_failure
from pipeline_kit.vsa import analysis_file, vsa_bundle

if TYPE_CHECKING:
    from pipeline_kit.analysis import Analysis, Result
    from pipeline_kit.promotion.rollout_record import Outcome as RolloutOutcome


@dataclass(frozen=True)
class Promotion:
    plan: Plan
    decision: Decision
    entry: Entry
    deployed: bool | None  # None: no deploy command
    break_glass_refused: str | None = None  # what a --break-glass could not waive (see `unwaivable`)
    analysis: Analysis | None = None  # the analysis after the deploy, when the environment has one
    aftermath: tuple[str, ...] = ()  # what a failed analysis did: kill switches, the rollback
    rollout: RolloutOutcome | None = None  # the strategy's steps, when the environment has one


def promote(
    project: Project,
    environment: str,
    *,
    reason: str | None,
    break_glass: bool,
    deploy: str | Sequence[str] | None,
    token: TokenProvider,
    on_output: Callable[[str], None] | None = None,
    on_progress: Callable[[int, Result], None] | None = None,
    on_step: Callable[[str], None] | None = None,
    step_mode: bool = False,
    deploy_elsewhere: bool = False,
    purpose: Literal["promotion", "reconcile"] = "promotion",
) -> Promotion:
    """One promotion: decided (every gate judged here), recorded, then deployed and, where the
    environment has one, analysed or rolled out step by step (docs/promotion.md).
    `deploy_elsewhere`: decided and recorded only, its deploy pending; another job deploys, and
    `elsewhere.arrive` completes it (the isolated layout): nothing is signed here. `purpose`:
    a reconcile (drift.reconcile, never waived) is recorded as one, in the ledger and the VSA."""
    if break_glass and not reason:
        raise UsageError("--break-glass needs --reason: a waiver is recorded with its why")
    check_environment(project.config, environment)
    settings = project.config.environments[environment]
    if deploy_elsewhere:
        refuse_elsewhere(project, environment, deploy)
    if settings.strategy is not None:
        rollout_record.refuse_second(history(project.ledger), environment)
    result = plan(project, environment)
    refused = unwaivable(result) if break_glass else None
    verdict: Literal["passed", "denied", "waived"] = (
        "passed" if result.passed else "waived" if break_glass and refused is None else "denied"
    )
    decided = decide(project, result, verdict, reason, purpose)
    # a rollout signs its VSA once its last step passed, like an analysis
    analysed = settings.analysis is not None or settings.strategy is not None
    command = deploy or settings.deploy
    evidence = project.evidence
    # read (and refused, exit 2) before anything is claimed, signed or written: the names come
    # from release.json, and the bytes leave with the ledger
    travelling = evidence.travelling(evidence.load_release()) if verdict != "denied" else {}
    if deploy_elsewhere:
        entry, files = _record_decision(
            project, decided, None, travelling, signed_now=False, deploys=True, refused=refused
        )
        if verdict == "denied":
            record_on_forge(project, environment, decided.release, decided.decision, files, deployed=False)
        return Promotion(result, decided.decision, entry, None, refused)
    runner = None
    if settings.strategy is not None and verdict != "denied":  # one rollout at a time: claimed first
        from pipeline_kit.promotion import rollout  # (its traffic providers) only for a strategy

        runner = rollout.claim(project, decided, token, on_progress=on_step, on_result=on_progress)
    # The VSA says the release arrived: signed once its deploy succeeded (a job killed during the
    # deploy leaves no signed arrival), after the analysis when there is one, at once with nothing
    # to deploy. A waived promotion skips the analysis, and is signed after its deploy.
    signed_late = not analysed or verdict == "waived"
    entry, files = _record_decision(
        project,
        decided,
        token,
        travelling,
        signed_now=not command and signed_late,
        deploys=bool(command),
        refused=refused,
    )
    release, decision = decided.release, decided.decision
    if verdict == "denied":
        record_on_forge(project, environment, release, decision, files, deployed=False)
        return Promotion(result, decision, entry, None, refused)
    if runner is not None:
        outcome = rollout.start(runner, step_mode=step_mode, on_output=on_output)
        analysis = outcome.analyses[-1][1] if outcome.analyses else None  # the last step's, as one deploy's
        return Promotion(result, decision, entry, outcome.verdict == "finished", analysis=analysis, rollout=outcome)
    deployed = _deploy(project, decided, files, deploy, token, on_output, signed_late=signed_late)
    if signed_late:  # no analysis (or a waived one): arrived once deployed
        record_on_forge(project, environment, release, decision, files, deployed=True)
        return Promotion(result, decision, entry, deployed)
    analysis, aftermath = analyse_deploy(project, decided, files, token, on_progress)
    return Promotion(result, decision, entry, deployed, analysis=analysis, aftermath=aftermath)


def unwaivable(result: Plan) -> str | None:
    """What a --break-glass cannot waive in `result`, said as the refusal. Integrity: evidence that
    does not verify is not a release of ours, whoever insists. A verified stop of the org's line:
    only a signed resume lifts it (an unreadable line, an error, may be waived)."""
    if result.passed:
        return None
    if result.integrity is not None:
        return f"waives policy gates, never integrity: {result.integrity}"
    stopped = [r for r in result.results if r.gate == StopTheLineGate.name and r.verdict == "denied"]
    return f"never lifts a verified stop of the org's line: {stopped[0].reason}" if stopped else None


def refuse_elsewhere(project: Project, environment: str, deploy: str | Sequence[str] | None = None) -> None:
    """What a promotion whose deploy runs in another job cannot have: a deploy command here, or a
    rollout, whose steps each deploy and set traffic from the kit's own process."""
    refuse_command_elsewhere(deploy)
    if project.config.environments[environment].strategy is not None:
        raise UsageError(
            f"{environment} has a rollout strategy: its steps deploy from the kit's own process, "
            "so it cannot deploy elsewhere",
            hint="promote it in one job (`pipeline-kit promote`), the shared layout",
        )


def _deploy(
    project: Project,
    decided: Decided,
    files: dict[str, bytes],
    deploy: str | Sequence[str] | None,
    token: TokenProvider,
    on_output: Callable[[str], None] | None,
    *,
    signed_late: bool,
) -> bool | None:
    """The deploy, followed on the forge; `signed_late`: the VSA signed once it succeeded, kept
    beside the evidence, attached to the `deployed` entry and added to `files`."""
    environment, release, decision = decided.environment, decided.release, decided.decision
    deployment = start_forge_deployment(project, environment, release, decision, files)

    def sign_deployed() -> tuple[dict[str, Any], list[bytes]]:
        bundle = sign_vsa(project, decided, token, late=True)
        files[vsa_bundle(environment)] = bundle
        project.evidence.record_many(release, {vsa_bundle(environment): bundle})
        return {"vsa": sha256_bytes(bundle)}, [bundle]

    try:
        deployed = run_deploy(
            project,
            environment,
            release,
            project.evidence,
            deploy,
            on_output,
            on_success=sign_deployed if signed_late else None,
        )
    except BuildFailed:
        finish_forge_deployment(project, environment, deployment, "failure")
        raise
    finish_forge_deployment(project, environment, deployment, "success")
    return deployed


def _record_decision(
    project: Project,
    decided: Decided,
    token: TokenProvider | None,
    travelling: dict[str, bytes],
    *,
    signed_now: bool,
    deploys: bool,
    refused: str | None,
) -> tuple[Entry, dict[str, bytes]]:
    """The decision (and, `signed_now`, its VSA) written beside the evidence and appended to the
    ledger with the release's evidence attached; returns the entry and the files written. No
    `token`: nothing is signed here (a decision whose deploy and arrival run elsewhere)."""
    evidence, decision, environment = project.evidence, decided.decision, decided.environment
    verdict, release = decision.verdict, decided.release
    files = {decision_file(environment): decision.to_json()}
    if verdict != "denied" and token is not None:
        # The VSA is signed once the release arrived (see promote); the identity token is asked
        # for now all the same, so a missing one stops before anything is deployed.
        raw, source = token()
        if signed_now:
            files[vsa_bundle(environment)] = sign_vsa(project, decided, lambda: (raw, source))
    evidence.record_many(release, files)
    vsa = files.get(vsa_bundle(environment))
    entry = project.ledger.append(
        Draft(
            kind=verdict if verdict != "passed" else "reconciled" if decision.purpose == "reconcile" else "promoted",
            environment=environment,
            release=release.id,
            subjects=decision.subjects,
            actor=project.actor,
            time=decision.time,
            reason=decision.reason,
            details={
                "decision": sha256_bytes(files[decision_file(environment)]),
                **({"vsa": sha256_bytes(vsa)} if vsa is not None else {}),
                "blocking": [f"{r.gate}: {r.reason}" for r in decided.plan.blocking()],
                **({"purpose": decision.purpose} if decision.purpose != "promotion" else {}),
                **({"break_glass_refused": refused} if refused else {}),
                **org_line_seen(decided.plan),
                # an arrival counts once its deploy succeeded (a `deployed` entry), or at once
                # when there is nothing to deploy
                **({"deploy": "pending" if deploys else "none"} if verdict != "denied" else {}),
                # the release's evidence travels with the ledger: a job that never had its
                # archive can still show (by verifying it) what this environment runs
                **({"evidence": {n: sha256_bytes(d) for n, d in travelling.items()}} if travelling else {}),
            },
        ),
        [*([vsa] if vsa is not None else []), *travelling.values()],
    )
    return entry, files


def org_line_seen(result: Plan) -> dict[str, Any]:
    """The org ledger head the decision read the line on, for the project's ledger: a later read
    of an org ledger without it finds the org ledger rewritten (`stopline.last_seen`). Only a head
    read whole: a rewritten org ledger's must never become what the project remembers."""
    from pipeline_kit.stopline import ORG_LINE

    for r in result.results:
        seq, entry_hash = r.evidence.get("seq"), r.evidence.get("hash")
        if r.gate != StopTheLineGate.name or "unreadable" in r.evidence:
            continue
        if isinstance(seq, int) and isinstance(entry_hash, str) and entry_hash:
            return {ORG_LINE: [seq, entry_hash]}
    return {}


def analyse_deploy(
    project: Project,
    decided: Decided,
    files: dict[str, bytes],
    token: TokenProvider,
    on_progress: Callable[[int, Result], None] | None,
    *,
    apart: bool = False,
) -> tuple[Analysis, tuple[str, ...]]:
    """Measure the deployed release; sign its PASSED VSA if the analysis passed, else turn the
    kill switches off and roll back (each step recorded). Returns the analysis and what was done.
    `apart`: in a job that runs no user command (elsewhere.arrive): the rollback is signed and
    recorded, its deploy left to the workflow."""
    import os

    from pipeline_kit.analysis import analyse, release_values
    from pipeline_kit.metrics import open_provider

    release, decision, environment = decided.release, decided.decision, decided.environment
    config = project.config
    settings = config.environments[environment]
    assert settings.analysis is not None
    provider = open_provider(config, settings.analysis.provider, os.environ)
    analysis = analyse(provider, settings.analysis, release_values(release, environment, ""), on_result=on_progress)
    record = json.dumps(
        {"release": release.id, "environment": environment, **analysis.as_dict()}, indent=2, sort_keys=True
    ).encode()
    recorded = {analysis_file(environment): record}
    details: dict[str, Any] = {
        "verdict": analysis.verdict,
        "reason": analysis.reason,
        "analysis": sha256_bytes(record),
        "counts": analysis.counts(),
    }
    attachments = []
    if analysis.passed:
        analysed = {"name": analysis_file(environment), "sha256": sha256_bytes(record)}
        bundle = sign_vsa(project, decided, token, after_analysis=analysed, late=True, apart=apart)
        recorded[vsa_bundle(environment)] = bundle
        details["vsa"] = sha256_bytes(bundle)
        attachments.append(bundle)
    try:
        project.evidence.record_many(release, recorded)
    except (PipelineKitError, OSError) as exc:
        if analysis.passed:
            raise
        # a planted file where the record goes must never keep a failed release deployed: the
        # ledger keeps the verdict, and the kill switches and the rollback run all the same
        details["unrecorded"] = exc.message if isinstance(exc, PipelineKitError) else str(exc.strerror)
    project.ledger.append(
        Draft(
            kind="analysed",
            environment=environment,
            release=release.id,
            subjects=decision.subjects,
            actor=project.actor,
            time=now_utc(),
            reason=analysis.reason,
            details=details,
        ),
        attachments,
    )
    if analysis.passed:
        record_on_forge(project, environment, release, decision, {**files, **recorded}, deployed=True)
        return analysis, ()
    return analysis, after_failure(project, environment, release, analysis, token, roll_back=not apart)
