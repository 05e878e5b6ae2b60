"""What a promotion leaves behind: the signed VSAs (a promotion's, only on a decision taken in
this process; a rollback's hold; a root cause) and the forge's records of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pipeline_kit import __version__
from pipeline_kit.config import Config
from pipeline_kit.digest import sha256_bytes
from pipeline_kit.forge import DeploymentState
from pipeline_kit.ledger import Entry, head
from pipeline_kit.models import Release, Subject, release_id
from pipeline_kit.promotion.deciding import Decided, ledger_input
from pipeline_kit.promotion.model import (
    KIT_URI,
    Decision,
    Project,
    TokenProvider,
    decision_file,
    history,
    now_utc,
    resource_uri,
)
from pipeline_kit.signing import Signable, sign_all, statement_json
from pipeline_kit.vsa import (
    ANALYSIS_PASSED,
    LEDGER_INPUT,
    RECONCILED,
    SIGNED_APART,
    SIGNED_BESIDE_USER_CODE,
    VSA_PREDICATE,
    WAIVED,
    compensated_level,
    hold_bundle,
    hold_level,
    root_cause_bundle,
    vsa_bundle,
)


def sign_vsa(
    project: Project,
    decided: Decided,
    token: TokenProvider,
    after_analysis: dict[str, str] | None = None,
    late: bool = False,
    slot: str | None = None,
    apart: bool = False,
) -> bytes:
    """The promotion's signed VSA bundle: the one place a promotion's VSA (PASSED, or FAILED and
    waived) is signed, and only on a `Decided` (a plan judged in this process, decided here).
    Signed `late` (after a deploy: an analysis, a rollout's last step), it commits to the ledger
    head of that moment, not the decision's, and names the analysis record when there is one. A
    rollout's VSA names the `slot` its release went live in (where the next rollout's canary must
    not go: a ledger line cannot say otherwise). `apart`: signed where no user command ran."""
    release, decision = decided.release, decided.decision
    if decision.verdict == "denied":
        raise ValueError("a denied decision has no VSA to sign")
    ledger_head = head(history(project.ledger)) if late else None
    predicate = _vsa_predicate(project.config, decision, ledger_head, after_analysis)
    predicate["verifiedLevels"].append(SIGNED_APART if apart else SIGNED_BESIDE_USER_CODE)
    if slot is not None:
        predicate["policy"]["annotations"]["slot"] = slot
    statement = statement_json(release.subjects, VSA_PREDICATE, predicate)
    raw, source = token()
    name = vsa_bundle(decision.environment)
    return sign_all(project.trust.load(), raw, source, [Signable(name, statement=statement)]).files[name]


def _vsa_predicate(
    config: Config,
    decision: Decision,
    ledger_head: tuple[int, str] | None = None,
    analysis: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The VSA of a promotion. Signed after an analysis, it names the analysis record and the
    ledger head at that moment (the decision's head is then no longer the newest)."""
    levels = [f"PIPELINE_KIT_PROMOTED_{decision.environment.upper().replace('-', '_')}"]
    if decision.break_glass:
        levels.append(WAIVED)
    if decision.purpose == "reconcile":
        levels.append(RECONCILED)
    levels += [f"PIPELINE_KIT_GATE_{g.gate.upper().replace('-', '_')}_{g.verdict.upper()}" for g in decision.gates]
    inputs = list(decision.input_attestations)
    if ledger_head is not None:
        inputs = [i for i in inputs if i.get("name") != LEDGER_INPUT] + [ledger_input(*ledger_head)]
    if analysis is not None:
        levels.append(ANALYSIS_PASSED)
        inputs.append({"name": analysis["name"], "digest": {"sha256": analysis["sha256"]}})
    return {
        "verifier": {"id": f"{KIT_URI}/promote", "version": {"pipeline-kit": __version__}},
        "timeVerified": decision.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resourceUri": resource_uri(config, decision.environment),
        "policy": {
            "uri": decision.policy["uri"],
            "digest": {"sha256": decision.policy["sha256"]},
            "annotations": {
                **{key: decision.policy[key] for key in ("identity", "source", "overrides")},
                **({"purpose": decision.purpose} if decision.purpose != "promotion" else {}),
            },
        },
        "inputAttestations": inputs,
        # A waived promotion did not pass verification: say so; only the ledger makes it count.
        "verificationResult": "FAILED" if decision.break_glass else "PASSED",
        "verifiedLevels": levels,
        "slsaVersion": "1.1",
    }


def sign_hold(
    project: Project,
    environment: str,
    subjects: tuple[Subject, ...],
    to: str | None,
    entries: Sequence[Entry],
    reason: str,
    token: TokenProvider,
    *,
    for_cause: bool = True,
) -> bytes:
    """A signed rollback of the release of `subjects` out of `environment`, naming the release it
    went back to (`to`, None: nothing), kept in its archive; returns the bundle. `for_cause`: the
    release failed there, and is held out until a root cause is signed; else a compensation (a
    sibling in its release plan failed), which holds nothing."""
    annotations = {"reason": reason, "to": to}
    level = hold_level if for_cause else compensated_level
    return sign_failed(project, environment, subjects, "rollback", level, annotations, entries, token)


def sign_failed(
    project: Project,
    environment: str,
    subjects: tuple[Subject, ...],
    what: Literal["rollback", "root-cause"],
    level: Callable[[str], str],
    annotations: dict[str, Any],
    entries: Sequence[Entry],
    token: TokenProvider,
) -> bytes:
    """A FAILED VSA about `subjects` for `environment` carrying `level` (never a pass: a rollback,
    or the root cause lifting one), naming the ledger head; kept in the release's archive."""
    predicate = {
        "verifier": {"id": f"{KIT_URI}/{what}", "version": {"pipeline-kit": __version__}},
        "timeVerified": now_utc().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resourceUri": resource_uri(project.config, environment),
        "policy": {"uri": Path(project.config.source_path or "pipeline-kit.yml").name, "annotations": annotations},
        "inputAttestations": [ledger_input(*head(entries))],
        "verificationResult": "FAILED",
        "verifiedLevels": [level(environment)],
        "slsaVersion": "1.1",
    }
    raw, source = token()
    name = hold_bundle(environment) if what == "rollback" else root_cause_bundle(environment)
    statement = statement_json(subjects, VSA_PREDICATE, predicate)
    bundle = sign_all(project.trust.load(), raw, source, [Signable(name, statement=statement)]).files[name]
    project.evidence.keep(release_id(subjects), name, bundle)
    return bundle


def start_forge_deployment(
    project: Project, environment: str, release: Release, decision: Decision, files: dict[str, bytes]
) -> str | None:
    """A deployment on the forge, in progress, carrying the release and the VSA's digest."""
    if project.forge is None or not release.source.commit:
        return None
    payload: dict[str, object] = {
        "release": release.id,
        "subjects": decision.subjects,
        "vsa": sha256_bytes(files[vsa_bundle(environment)]) if vsa_bundle(environment) in files else None,
        "decision": sha256_bytes(files[decision_file(environment)]),
        "verdict": decision.verdict,
    }
    return project.forge.start_deployment(environment, release.source.commit, release.source.ref, payload)


def finish_forge_deployment(project: Project, environment: str, deployment: str | None, state: DeploymentState) -> None:
    if project.forge is not None and deployment is not None:
        project.forge.finish_deployment(deployment, environment, state, f"pipeline-kit: deploy {state}")


FORGE_DEADLINE = 60.0  # seconds for a promotion's forge records in all (each request has its own timeout too)


def record_on_forge(
    project: Project, environment: str, release: Release, decision: Decision, files: dict[str, bytes], *, deployed: bool
) -> None:
    """A commit status with the verdict, and (where the forge keeps them) the attestations: each
    an independent request, sent at once, all within FORGE_DEADLINE; the first failure (in this
    order) is raised."""
    forge = project.forge
    if forge is None:
        return
    requests: list[Callable[[], object]] = []
    if release.source.commit:
        commit = release.source.commit
        state: Literal["success", "failure"] = "success" if decision.verdict != "denied" else "failure"
        description = f"{decision.verdict}: release {release.id}"
        requests.append(partial(forge.commit_status, commit, state, f"pipeline-kit/{environment}", description))
    if deployed:
        from pipeline_kit.signing import PROVENANCE_BUNDLE, SBOM_BUNDLE

        bundles = [
            project.evidence.path(n).read_bytes()
            for n in (PROVENANCE_BUNDLE, SBOM_BUNDLE)
            if project.evidence.path(n).is_file()
        ]
        if vsa_bundle(environment) in files:
            bundles.append(files[vsa_bundle(environment)])
        requests += [partial(forge.upload_attestation, data) for data in bundles]
    from pipeline_kit._internal.http import HttpProblem, all_within
    from pipeline_kit.forge import ForgeError

    try:
        all_within(requests, FORGE_DEADLINE, f"{forge.describe()} records")
    except HttpProblem as exc:
        raise ForgeError(str(exc)) from None
