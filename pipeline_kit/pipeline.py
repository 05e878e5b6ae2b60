"""The pipeline in one call: build, SBOM, provenance, then either what CI would sign and how
each environment would judge it (a dry run), or the real thing: sign and promote."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_kit.build import BuildRequest, build
from pipeline_kit.errors import UsageError
from pipeline_kit.identity import NO_POLICY, IdentityPolicy, policy_accepts
from pipeline_kit.signing import (
    PROVENANCE_BUNDLE,
    PROVENANCE_PREDICATE,
    SBOM_BUNDLE,
    SBOM_PREDICATE,
    Signed,
    sign_release,
    subject_bundle,
)
from pipeline_kit.trust import Trust

# What runs after the build (the SBOM, provenance, promotion, and the Sigstore client) is imported
# inside the functions that use it, and by `_preload` while the build runs in its own process:
# the kit's start before the build is only what the build needs.
if TYPE_CHECKING:
    from pipeline_kit.analysis import Result
    from pipeline_kit.ci import CIContext
    from pipeline_kit.config import Config
    from pipeline_kit.evidence import EvidenceDir
    from pipeline_kit.ledger import Ledger
    from pipeline_kit.models import Release
    from pipeline_kit.promotion.arriving import Promotion
    from pipeline_kit.promotion.deciding import Plan
    from pipeline_kit.promotion.model import Project, TokenProvider
    from pipeline_kit.sbom import SourceResult, SourceSpec


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
    signed_before: bool  # the same subjects were signed here: their evidence is shown as signed
    foreign_source: ForeignSource | None = None  # this clone's origin is not the policy's repository


@dataclass(frozen=True)
class ForeignSource:
    """This clone's origin is not the policy's repository (a clone of the example, a fork): CI would
    deny a release built here, as every environment above says. `passing`: the environments that
    would pass were the same release built from the policy's repository (a hint, never a verdict)."""

    built_from: str
    expected: str
    passing: list[str]


@dataclass(frozen=True)
class FullRun:
    release: Release
    sources: list[SourceResult]
    ci: CIContext
    signed: Signed
    promotion: Promotion | None  # None: promotion not asked for, or no environments


def describe(
    request: BuildRequest,
    specs: list[SourceSpec],
    ci: CIContext,
    evidence: EvidenceDir,
    workdir: Path,
    config: Config | None = None,
    trust: Trust | None = None,
) -> tuple[Release, list[SourceResult]]:
    """Build once, then the SBOM and the provenance about exactly what was built. A release
    signed before (the same subjects) keeps the SBOM and provenance it was signed with. While the
    build runs, what comes after it is prepared (see `_preload`), with `trust`'s root if given."""
    threading.Thread(target=_preload, args=(specs, trust), name="pipeline-kit-preload", daemon=True).start()
    # A failed build is reported at once (a daemon, the preload is left behind), never after an
    # offline trust root's timeout
    release = build(request, evidence, ci)
    if evidence.is_signed(release.id):
        return release, []
    from pipeline_kit.provenance import write_provenance
    from pipeline_kit.sbom import write_sbom

    release, results = write_sbom(evidence, release, specs)
    return write_provenance(release, ci, evidence, workdir, config), results


def full_run(
    request: BuildRequest,
    specs: list[SourceSpec],
    ci: CIContext,
    project: Project,
    token: TokenProvider,
    environment: str | None,
    reason: str | None = None,
    on_output: Callable[[str], None] | None = None,
    on_progress: Callable[[int, Result], None] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> FullRun:
    """Build, describe, sign, and promote to `environment`, in one process with one sign-in: what
    CI does across jobs, here on one machine (a denial is recorded like any other)."""
    release, results = describe(
        request, specs, ci, project.evidence, project.workdir, project.config, trust=project.trust
    )
    if project.evidence.is_signed(release.id):
        raise UsageError(
            f"release {release.id} was signed here before: its signed evidence is kept as it was",
            hint="promote it with `pipeline-kit promote --to ENV`, or change the source to build a new release",
        )
    from pipeline_kit.promotion.arriving import promote

    raw, source = token()
    signed = sign_release(project.evidence, project.workdir, project.trust.load(), raw, source)
    promotion = None
    if environment is not None:
        promotion = promote(
            project,
            environment,
            reason=reason,
            break_glass=False,
            deploy=None,
            token=lambda: (raw, source),
            on_output=on_output,
            on_progress=on_progress,
            on_step=on_step,
        )
    return FullRun(signed.release, results, ci, signed, promotion)


def _preload(specs: list[SourceSpec], trust: Trust | None) -> None:
    """While the build runs in its own process: import what runs after it (the SBOM with its
    validator, provenance and promotion; with `trust`, the Sigstore client, about half a second)
    and load `trust`'s root (a TUF refresh over the network for the public-good instance). A
    failure is left to the step that needs them, which reports it as one line (`Trust.load` keeps
    its outcome, so a trust root that cannot be loaded is not asked for twice)."""
    with contextlib.suppress(Exception):  # in the order the steps after the build need them
        from pipeline_kit.sbom import prepare

        prepare(specs)
        import pipeline_kit.provenance

        if trust is not None:
            import sigstore.models
            import sigstore.sign
            import sigstore.verify  # noqa: F401

            trust.load()
        import pipeline_kit.promotion.arriving  # noqa: F401


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
    release, results = describe(request, specs, ci, evidence, workdir, config)
    from pipeline_kit.promotion.deciding import plan
    from pipeline_kit.promotion.model import Project

    plans = []
    if config is not None and config.environments:
        # Nothing is signed here: each environment is judged as CI will judge it once CI signs as
        # the policy's identity (what only CI can know is marked so); without a policy, the
        # evidence gates say there is nothing to judge by.
        identity = config.signing.identity
        if identity is not None:
            policy = IdentityPolicy.from_config(identity)
            trust = Trust(policy, lambda: None, identity.repository, identity.ref, projected=True)
        else:
            trust = Trust(None, lambda: None, unverified=NO_POLICY)
        project = Project(config, evidence, workdir, ledger, trust, actor)
        plans = [plan(project, env) for env in config.environment_order()]
        foreign = _foreign_source(release, project)
    else:
        foreign = None
    signed_before = evidence.is_signed(release.id)
    return DryRun(release, results, ci, signing_plan(release, config, ci), plans, signed_before, foreign)


def _foreign_source(release: Release, project: Project) -> ForeignSource | None:
    """When this clone's origin is not the policy's repository, how the environments would be judged
    had the release been built from the policy's repository: everything else exactly as judged."""
    trust = project.trust
    built_from, expected = release.source.repository, trust.repository
    if not trust.projected or built_from is None or expected is None:
        return None
    if built_from.rstrip("/") == expected.rstrip("/"):
        return None
    from pipeline_kit.promotion.deciding import plan

    elsewhere = replace(project, trust=replace(trust, repository=built_from))
    passing = [env for env in project.config.environment_order() if plan(elsewhere, env).passed]
    return ForeignSource(built_from, expected, passing)


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
            verdict="a local signature would not satisfy a CI identity policy" if policy else NO_POLICY,
            note=None,
        )
    accepted, verdict = (None, NO_POLICY)
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
