"""A promotion whose deploy runs in another job: the isolated layout (docs/signing-layouts.md).

`promote --deploy-elsewhere` decides and records the promotion (deploy pending) and signs nothing;
the user's deploy job, which has no signing power, deploys the decided digest; `arrive` then
completes it in a job that runs only the kit. The arrival is judged again here, from the signed
evidence alone, never from what the deploy job could have written (the ledger line it completes
only links the two and must still be the newest for the environment), then analysed, and signed.
No user command runs in this process: a failed analysis turns the kill switches off and signs the
rollback (the hold), leaving its deploy to a job of the workflow's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pipeline_kit._internal.proc import apart
from pipeline_kit.digest import sha256_bytes
from pipeline_kit.errors import BuildFailed, UsageError, VerificationError
from pipeline_kit.ledger import Draft, Entry, Guard
from pipeline_kit.promotion.arriving import Promotion, analyse_deploy, refuse_elsewhere, unwaivable
from pipeline_kit.promotion.deciding import decide, plan
from pipeline_kit.promotion.model import Project, TokenProvider, check_environment, decision_file, now_utc
from pipeline_kit.promotion.records import record_on_forge, sign_vsa
from pipeline_kit.vsa import vsa_bundle

if TYPE_CHECKING:
    from pipeline_kit.analysis import Result


def awaited(entries: Sequence[Entry], environment: str, release: str) -> Entry:
    """The decision an arrival completes: the newest entry for `environment`, a promotion of
    `release` whose deploy is pending, or only the arrivals of it that failed since (a deploy job
    run again after its failure completes the same decision). Anything else since (another
    promotion, a rollback) refuses."""
    there = [e for e in entries if e.environment == environment]
    while there and _failed_arrival(there[-1], release):
        there.pop()
    newest = there[-1] if there else None
    if (
        newest is None
        or newest.kind not in ("promoted", "waived")
        or newest.release != release
        or newest.details.get("deploy") != "pending"
    ):
        found = f"{newest.kind} of {newest.release} (seq {newest.seq})" if newest else "nothing"
        raise UsageError(
            f"no promotion of {release} to {environment} awaits its deploy: the ledger's newest entry there is {found}",
            hint=f"decide first: pipeline-kit promote --to {environment} --deploy-elsewhere",
        )
    return newest


def _failed_arrival(entry: Entry, release: str) -> bool:
    """An arrival of `release` that failed: its deploy job did, or its gates did then."""
    return entry.kind == "deploy-failed" and entry.release == release and "deploy_job" in entry.details


def still_awaited(environment: str, release: str) -> Guard:
    """The guard on an arrival's entry: the decision it completes is still the newest there."""

    def guard(entries: Sequence[Entry]) -> None:
        awaited(entries, environment, release)

    return guard


def arrive(
    project: Project,
    environment: str,
    *,
    deploy_result: Literal["success", "failure", "cancelled", "skipped"],
    reason: str | None,
    break_glass: bool,
    token: TokenProvider,
    on_progress: Callable[[int, Result], None] | None = None,
    expected: str | None = None,
) -> Promotion:
    """Complete the promotion `promote --deploy-elsewhere` recorded, once its deploy job ended
    with `deploy_result`: judged again, analysed where the environment says so, signed.
    `expected`: the release the deciding job decided, as the workflow passed it on (a job in
    between can replace the files handed over, never another job's outputs)."""
    if break_glass and not reason:
        raise UsageError("--break-glass needs --reason: a waiver is recorded with its why")
    check_environment(project.config, environment)
    refuse_elsewhere(project, environment)
    with apart(f"arrive signs the VSA of {environment}"):
        return _arrive(project, environment, deploy_result, reason, break_glass, token, on_progress, expected)


def _arrive(
    project: Project,
    environment: str,
    deploy_result: str,
    reason: str | None,
    break_glass: bool,
    token: TokenProvider,
    on_progress: Callable[[int, Result], None] | None,
    expected: str | None,
) -> Promotion:
    release = project.evidence.load_release()
    if expected is not None and expected != release.id:
        raise VerificationError(f"the evidence handed over is release {release.id}, not {expected}, which was decided")
    awaiting = awaited(project.ledger.verify(), environment, release.id)
    guard = still_awaited(environment, release.id)

    def record(kind: Literal["deployed", "deploy-failed"], details: dict[str, Any], attachments: list[bytes]) -> Entry:
        subjects = {s.name: s.sha256 for s in release.subjects}
        draft = Draft(
            kind=kind,
            environment=environment,
            release=release.id,
            subjects=subjects,
            actor=project.actor,
            time=now_utc(),
            details={"deploy_job": deploy_result, **details},
        )
        return project.ledger.append(draft, attachments, guard=guard)

    if deploy_result != "success":
        record("deploy-failed", {}, [])
        raise BuildFailed(f"the deploy job for {environment} ended {deploy_result}; recorded in the ledger")
    result = plan(project, environment, completing=awaiting.seq)
    refused = unwaivable(result) if break_glass else None
    verdict: Literal["passed", "denied", "waived"] = (
        "passed" if result.passed else "waived" if break_glass and reason and refused is None else "denied"
    )
    decided = decide(project, result, verdict, reason)
    decision = decided.decision
    files = {decision_file(environment): decision.to_json()}
    details: dict[str, Any] = {"decision": sha256_bytes(files[decision_file(environment)])}
    if verdict == "denied":
        # deployed, yet it does not pass here: no arrival, and the environment is in doubt
        project.evidence.record_many(release, files)
        details["refused"] = "; ".join(f"{r.gate}: {r.reason}" for r in result.blocking())
        return Promotion(result, decision, record("deploy-failed", details, []), True, refused)
    signed_now = project.config.environments[environment].analysis is None or verdict == "waived"
    if signed_now:
        files[vsa_bundle(environment)] = sign_vsa(project, decided, token, late=True, apart=True)
        details["vsa"] = sha256_bytes(files[vsa_bundle(environment)])
    project.evidence.record_many(release, files)
    entry = record("deployed", {"exit_code": 0, **details}, [files[vsa_bundle(environment)]] if signed_now else [])
    if signed_now:
        record_on_forge(project, environment, release, decision, files, deployed=True)
        return Promotion(result, decision, entry, True)
    analysis, aftermath = analyse_deploy(project, decided, files, token, on_progress, apart=True)
    return Promotion(result, decision, entry, True, analysis=analysis, aftermath=aftermath)
