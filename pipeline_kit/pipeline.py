"""The local pipeline in one call: build, SBOM, provenance, and what CI would then sign."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline_kit.build import BuildRequest, build
from pipeline_kit.ci import CIContext
from pipeline_kit.config import Config
from pipeline_kit.evidence import EvidenceDir
from pipeline_kit.identity import policy_accepts
from pipeline_kit.ledger import Ledger
from pipeline_kit.models import Release
from pipeline_kit.promote import Plan, Project, Trust, plan
from pipeline_kit.provenance import write_provenance
from pipeline_kit.sbom import SourceResult, SourceSpec, write_sbom
from pipeline_kit.signing import (
    PROVENANCE_BUNDLE,
    PROVENANCE_PREDICATE,
    SBOM_BUNDLE,
    SBOM_PREDICATE,
    subject_bundle,
)


@dataclass(frozen=True)
class SigningPlan:
    """What a CI run would sign, as whom, and whether the policy would accept it."""

    # (bundle file, what it would contain)
    bundles: tuple[tuple[str, str], ...]
    signer: str
    issuer: str | None
    token_source: str
    policy: str | None
    accepted: bool | None
    verdict: str
    note: str | None


@dataclass(frozen=True)
class DryRun:
    release: Release
    sources: list[SourceResult]
    ci: CIContext
    signing: SigningPlan
    plans: list[Plan]


def dry_run(
    request: BuildRequest,
    specs: list[SourceSpec],
    config: Config | None,
    ci: CIContext,
    evidence: EvidenceDir,
    workdir: Path,
    ledger: Ledger,
    actor: str,
) -> DryRun:
    release = build(request, evidence, ci)
    release, results = write_sbom(evidence, release, specs)
    release = write_provenance(release, ci, evidence, workdir)
    plans = []
    if config is not None and config.environments:
        # Nothing is signed locally: the evidence gates say so; the others judge for real.
        trust = Trust(None, lambda: None, unverified="dry run: nothing is signed locally (CI signs before promoting)")
        project = Project(config, evidence, workdir, ledger, trust, actor)
        plans = [plan(project, env) for env in config.environment_order()]
    return DryRun(release, results, ci, signing_plan(release, config, ci), plans)


def signing_plan(release: Release, config: Config | None, ci: CIContext) -> SigningPlan:
    count = f"{len(release.subjects)} subject{'s' if len(release.subjects) != 1 else ''}"
    bundles = (
        *((subject_bundle(s.name), f"signature over sha256:{s.sha256}") for s in release.subjects),
        (
            PROVENANCE_BUNDLE,
            f"DSSE in-toto statement {PROVENANCE_PREDICATE} (provenance.intoto.json), {count}",
        ),
        (SBOM_BUNDLE, f"DSSE in-toto statement {SBOM_PREDICATE} (sbom.cdx.json as predicate), {count}"),
    )
    policy = config.signing.identity if config else None
    policy_text = None
    if policy is not None:
        policy_text = f"issuer {policy.issuer}, identity {policy.san or '~ ' + str(policy.san_regex)}"
    if ci.signer is None:
        return SigningPlan(
            bundles=bundles,
            signer="the person who signs in (interactive OIDC); CI signs as its workflow identity",
            issuer=None,
            token_source="browser sign-in",  # noqa: S106 - a description, not a secret
            policy=policy_text,
            accepted=None,
            verdict="a local signature would not satisfy a CI identity policy"
            if policy
            else "no identity policy configured (signing.identity): any signer would be accepted",
            note=None,
        )
    accepted, verdict = (None, "no identity policy configured (signing.identity)")
    if policy is not None:
        accepted, verdict = policy_accepts(policy, ci.signer)
    return SigningPlan(
        bundles=bundles,
        signer=ci.signer.san,
        issuer=ci.signer.issuer,
        token_source=ci.signer.token_source,
        policy=policy_text,
        accepted=accepted,
        verdict=verdict,
        note=ci.signer.note,
    )
