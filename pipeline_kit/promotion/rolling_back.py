"""Rolling back: back to the previous release the signed record shows good, signed before
anything is deployed; and the signed root cause that lifts a rollback's hold."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pipeline_kit.digest import sha256_bytes
from pipeline_kit.errors import PipelineKitError, UsageError, VerificationError
from pipeline_kit.evidence import EvidenceDir
from pipeline_kit.ledger import Draft, Entry
from pipeline_kit.models import Release, Subject, check_release_id, release_id, release_id_of
from pipeline_kit.promotion.deploying import run_deploy
from pipeline_kit.promotion.model import (
    Project,
    TokenProvider,
    check_environment,
    history,
    now_utc,
    refuse_command_elsewhere,
    resource_uri,
)
from pipeline_kit.promotion.records import sign_failed, sign_hold
from pipeline_kit.promotion.shown import (
    Timeline,
    current_release,
    doubt,
    failed_since,
    failed_there,
    signed_timeline,
    verified_evidence,
)
from pipeline_kit.vsa import Accepted, Candidate, hold_level, root_cause_level


def rollback(
    project: Project,
    environment: str,
    *,
    to: str | None,
    reason: str,
    deploy: str | Sequence[str] | None,
    token: TokenProvider,
    on_output: Callable[[str], None] | None = None,
    from_release: Release | None = None,
    named: str | None = None,
    compensation: bool = False,
    deploy_elsewhere: bool = False,
) -> tuple[str, str, Entry]:
    """Go back to the previous good release of `environment` (or `to`); returns (from, to, entry).
    `from_release`: the release to take out, when the caller verified it (a failed analysis);
    `named`: the id of one the operator says runs there (`--from`), verified here; else the one
    the signed record shows there. `compensation`: taken out because a sibling in its release plan
    failed, not for a fault of its own: signed as a compensation, which holds nothing.
    `deploy_elsewhere`: signed and recorded here, deployed by a job of the workflow's (where no
    user command may run: `arrive`, `rollback --deploy-elsewhere`); the entry says so.

    The rollback is signed before anything is deployed: a FAILED VSA about the rolled-back
    release for this environment, naming the release it goes back to, so its hold survives edits
    to the ledger and the signed record shows what runs there after it."""
    check_environment(project.config, environment)
    if not reason:
        raise UsageError("rollback needs --reason")
    if deploy_elsewhere:
        refuse_command_elsewhere(deploy)
    if project.trust.policy is None:
        raise UsageError("no identity policy to tell from signatures what runs there")
    for given in (to, named):
        if given is not None:
            check_release_id(given)
    entries = history(project.ledger)
    timeline = signed_timeline(project, environment, entries)
    bad = from_release or _rolling_back(project, environment, entries, timeline, named)
    current = bad.id
    if to == current:
        raise UsageError(f"{to} is already the release in {environment}")
    archive = _rollback_target(project, environment, entries, timeline, current, to)
    release = archive.load_release()
    target = release.id
    _refuse_past_contract(project, entries, current, target, archive)
    held = sign_hold(project, environment, bad.subjects, target, entries, reason, token, for_cause=not compensation)
    details: dict[str, object] = {"from": current, "to": target, **({"compensation": True} if compensation else {})}
    if deploy_elsewhere:
        details["deploy"] = "elsewhere"
    else:
        run_deploy(project, environment, release, archive, deploy, on_output, details={"rollback": details})
    entry = project.ledger.append(
        Draft(
            kind="rolled-back",
            environment=environment,
            release=target,
            subjects={s.name: s.sha256 for s in release.subjects},
            actor=project.actor,
            time=now_utc(),
            reason=reason,
            details={**details, "hold": sha256_bytes(held)},
        ),
        [held],
    )
    if project.forge is not None:
        project.forge.upload_attestation(held)
    return current, target, entry


def _rolling_back(
    project: Project, environment: str, entries: Sequence[Entry], timeline: Timeline, named: str | None
) -> Release:
    """The release a rollback takes out, verified: `named` (`--from`, when the operator knows which
    runs there), else the one the signed record shows. When the ledger doubts it (the deploy that
    made it current failed, or another release was deployed since without a signed decision), the
    kit asks for `--from` instead of choosing on the ledger's word."""
    failed = failed_since(entries, environment, timeline)
    if named is None and failed is not None:  # the ledger's word: doubt, never a choice
        runs = [r for r in dict.fromkeys((failed.release, timeline.current, timeline.before)) if r]
        raise VerificationError(
            f"cannot tell what {environment} runs: {doubt(failed, environment)}",
            hint="roll back with --from RELEASE, naming the release that runs there ("
            + " or ".join(f"--from {r}" for r in runs)
            + ")",
        )
    candidate = named or timeline.current
    if candidate is None:
        raise UsageError(f"{environment} has no release to roll back from: {timeline.why}", hint=FRESH_JOB)
    by_ledger = current_release(entries, environment)
    if named is None and by_ledger is not None and by_ledger != candidate:
        raise VerificationError(
            f"cannot tell what {environment} runs: the signed record shows {candidate}, the ledger {by_ledger}",
            hint=f"if {by_ledger} was deployed there without a signed decision, roll back with --from {by_ledger}",
        )
    evidence, why = verified_evidence(project, entries, candidate)
    if evidence is None:
        raise _unshown(f"cannot roll back from {candidate}: {why}", why)
    return evidence.load_release()


FRESH_JOB = (
    "a rollback job needs the ledger, whose promotions attach each release's signed evidence: with"
    " `ledger: {backend: git}` a checkout is enough; with a file ledger, download the artifact of the"
    " last promotion job (.pipeline-kit-ledger/ and the evidence dir) first"
)


def _unshown(message: str, why: str) -> PipelineKitError:
    """Evidence that is missing is a job to set up (exit 2, saying how); evidence that does not
    verify is refused (exit 1)."""
    if why.startswith("no evidence of"):
        return UsageError(message, hint=FRESH_JOB)
    return VerificationError(message)


def _rollback_target(
    project: Project,
    environment: str,
    entries: Sequence[Entry],
    timeline: Timeline,
    current: str,
    to: str | None,
) -> EvidenceDir:
    """The evidence of the release to go back to: `to`, or the newest earlier one that qualifies,
    each shown from signed evidence: a signed PASSED VSA shows it arrived in `environment`, no
    signed rollback of it since (a release rolled back before is never brought back), and its
    evidence (archive, or the ledger's attachments) verifies. The ledger can only take a target
    away (its deploy or its analysis failed there)."""
    newest_first = [a.release for a in reversed(timeline.arrivals) if a.passed and a.release != current]
    candidates = [to] if to else list(dict.fromkeys(newest_first))
    if not candidates:
        raise UsageError(f"no earlier release was promoted to {environment} before {current} (signed)")
    refusals: list[PipelineKitError] = []
    for target in candidates:
        try:
            return _shown_good(project, environment, entries, timeline, target)
        except PipelineKitError as exc:  # noqa: PERF203 - one refusal per candidate, said at the end
            refusals.append(exc)
    if len(refusals) == 1:
        raise refusals[0]
    reasons = "; ".join(exc.message for exc in refusals)
    raise VerificationError(f"no earlier release of {environment} is shown good by signed evidence: {reasons}")


def _shown_good(
    project: Project, environment: str, entries: Sequence[Entry], timeline: Timeline, target: str
) -> EvidenceDir:
    arrival = next((a for a in reversed(timeline.arrivals) if a.release == target and a.passed), None)
    if arrival is None:
        raise VerificationError(f"rollback target {target}: no signed VSA shows {target} was promoted to {environment}")
    if timeline.held_since(arrival):
        raise VerificationError(f"rollback target {target}: {target} was rolled back out of {environment} (signed)")
    if target in failed_there(entries, environment):
        raise VerificationError(f"rollback target {target}: its deploy or its analysis failed in {environment}")
    # The files in the working directory are the current build's, not the target's: the
    # target is re-verified by its signed digests, which the deploy command fetches it by.
    evidence, why = verified_evidence(project, entries, target)
    if evidence is None:
        raise _unshown(f"rollback target {target}: {why}", why)
    return evidence


def _refuse_past_contract(
    project: Project, entries: Sequence[Entry], current: str, target: str, archive: EvidenceDir
) -> None:
    """A rollback past a contract migration would run code against a schema that no longer has
    what it expects: refused, pointing to the kill switch or a forward fix. The current release's
    record is re-verified first (an edited record must not open the way back)."""
    if project.config.migrations is None:
        return
    from pipeline_kit.migrations import contract_steps, load_record

    ours, why = verified_evidence(project, entries, current)
    if ours is None:
        raise VerificationError(f"cannot tell which migrations {current} applied: {why}")
    steps = contract_steps(load_record(ours), load_record(archive))
    if steps:
        raise UsageError(
            f"rolling back from {current} to {target} would cross contract migration(s) {', '.join(steps)}: "
            f"{target}'s code expects the schema they removed",
            hint="turn the feature off with its kill switch (pipeline-kit flags kill), or roll forward with a fix",
        )


def annotate(project: Project, environment: str, root_cause: str, token: TokenProvider) -> Entry:
    """Sign the root cause of the last rollback in `environment`: a statement about the rolled-back
    release's signed subjects, for that environment, which lifts its hold (rollback-hold accepts
    nothing else for a signed rollback). Kept in its archive, attached to the ledger, uploaded."""
    if project.trust.policy is None:
        raise UsageError("no identity policy to find the signed rollback with")
    check_environment(project.config, environment)
    entries = history(project.ledger)
    rollbacks = [e for e in entries if e.environment == environment and e.kind == "rolled-back"]
    if not rollbacks:
        raise UsageError(f"no rollback in {environment} to annotate")
    last = rollbacks[-1]
    digest = last.details.get("hold")
    data = project.ledger.attachment(digest) if isinstance(digest, str) else None
    signed = _signed_hold(project, environment, data, str(last.details.get("from")), last.seq)
    subjects = tuple(Subject(name=n, digest={"sha256": d}) for n, d in sorted(signed.subjects))
    annotations = {"rootCause": root_cause, "rollbackSeq": last.seq}
    bundle = sign_failed(project, environment, subjects, "root-cause", root_cause_level, annotations, entries, token)
    entry = project.ledger.append(
        Draft(
            kind="annotated",
            environment=environment,
            release=release_id(subjects),
            actor=project.actor,
            time=now_utc(),
            reason=root_cause,
            details={"rollback_seq": last.seq, "root_cause": sha256_bytes(bundle)},
        ),
        [bundle],
    )
    if project.forge is not None:
        project.forge.upload_attestation(bundle)
    return entry


def _signed_hold(project: Project, environment: str, data: bytes | None, held: str, seq: int) -> Accepted:
    """The signed rollback of `held` the ledger entry at `seq` attached, verified; else exit 1."""
    from pipeline_kit.verifier import verifier_for
    from pipeline_kit.vsa import signed_statement

    assert project.trust.policy is not None
    if data is None:
        raise VerificationError(f"the rollback at ledger seq {seq} has no signed hold attached to lift")
    verifier = verifier_for(project.trust.load())
    signed = signed_statement(Candidate(f"ledger seq {seq}", data), project.trust.policy, verifier)
    if isinstance(signed, str):
        raise VerificationError(f"the hold of the rollback at ledger seq {seq} {signed}")
    predicate = signed.predicate
    is_hold = predicate.get("verificationResult") == "FAILED" and hold_level(environment) in (
        predicate.get("verifiedLevels") or []
    )
    if not is_hold or predicate.get("resourceUri") != resource_uri(project.config, environment):
        raise VerificationError(f"ledger seq {seq} attaches no signed rollback out of {environment}")
    if release_id_of(signed.subjects) != held:
        raise VerificationError(f"the hold of the rollback at ledger seq {seq} is about another release than {held}")
    return signed
