"""Finding the signed VSAs about a release: every store the kit looks in (the evidence dir,
the release's archive, the ledger's attachments, the forge), for the caller to verify."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pipeline_kit.ledger import Entry
from pipeline_kit.models import Release
from pipeline_kit.promotion.model import Project, check_environment, history, resource_uri
from pipeline_kit.vsa import Candidate, hold_bundle, read_bundles, root_cause_bundle, vsa_bundle

if TYPE_CHECKING:
    from pipeline_kit.verify import Custody


def custody(project: Project, environment: str) -> Custody:
    """What `verify --env ENV` checks: a signed PASSED VSA for ENV and every environment before it,
    found where a promotion would look."""
    from pipeline_kit.verify import Custody

    check_environment(project.config, environment)
    chain = (environment, *project.config.upstream(environment))
    release = project.evidence.load_release()
    entries = history(project.ledger)
    kept = forge_attestations(project, release)
    return Custody(
        chain,
        {env: resource_uri(project.config, env) for env in chain},
        lambda env: vsa_candidates(project, release, env, entries, kept),
    )


def forge_attestations(project: Project, release: Release) -> tuple[list[Candidate], str | None]:
    """The Sigstore bundles the forge keeps about the release's first subject, and where they came
    from (None: no forge). An unreadable forge is noted, not fatal: other stores may hold the VSA."""
    from pipeline_kit.forge import ForgeError

    if project.forge is None:
        return [], None
    where = f"{project.forge.describe()} attestations"
    try:
        return [Candidate(where, data) for data in project.forge.attestations(release.subjects[0].sha256)], where
    except ForgeError as exc:
        return [], f"{where} (unreadable: {exc.message})"


def vsa_candidates(
    project: Project,
    release: Release,
    environment: str,
    entries: Sequence[Entry],
    forge: tuple[list[Candidate], str | None],
    *,
    kind: Literal["vsa", "hold", "root-cause"] = "vsa",
) -> tuple[list[Candidate], list[str]]:
    """Every VSA about `release` for `environment` (or every signed rollback of it out of there,
    or every signed root cause lifting such a hold) the kit can find, and where it looked: the
    evidence dir (as passed between jobs), the release's archive in it, the ledger's attachments,
    and the forge's attestations (`forge`, listed once by the caller). Each is verified by the
    caller, so any store will do."""
    candidates, looked = [], []
    name = {"vsa": vsa_bundle, "hold": hold_bundle, "root-cause": root_cause_bundle}[kind](environment)
    paths = [project.evidence.path(name), project.evidence.archive(release.id) / name]
    looked += [str(path) for path in paths]
    candidates += read_bundles(paths)
    looked.append(f"the ledger's attachments ({project.ledger.describe()})")
    for entry in entries:
        digest = entry.details.get(kind.replace("-", "_"))
        about = entry.details.get("from") if kind == "hold" else entry.release
        if entry.environment == environment and about == release.id and isinstance(digest, str):
            data = project.ledger.attachment(digest)
            if data is not None:
                candidates.append(Candidate(f"ledger seq {entry.seq}", data))
    kept, where = forge
    candidates += kept
    if where is not None:
        looked.append(where)
    return candidates, looked
