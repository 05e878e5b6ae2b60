"""What an evidence directory holds, read without the heavy libraries (for `pipeline-kit show`).

It reads the files as plain JSON and reports what it finds, including files whose digest no
longer matches the one release.json recorded. It is a summary, not a verification: signatures
are checked by `pipeline-kit verify`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline_kit.digest import sha256_bytes
from pipeline_kit.evidence import (
    BUNDLES_DIR,
    PROMOTIONS_DIR,
    PROVENANCE_FILE,
    RELEASE_FILE,
    SBOM_FILE,
    SUMS_FILE,
    EvidenceDir,
)
from pipeline_kit.models import Release


@dataclass(frozen=True)
class EvidenceFile:
    name: str
    present: bool
    # "recorded": digest matches release.json; "modified": it does not; "unrecorded": no digest kept
    state: str


@dataclass(frozen=True)
class SbomSummary:
    spec_version: str | None
    serial_number: str | None
    components: int
    sources: list[str]
    subjects_match: bool


@dataclass(frozen=True)
class ProvenanceSummary:
    predicate_type: str | None
    build_type: str | None
    builder_id: str | None
    source: str | None
    invocation: str | None
    subjects_match: bool


@dataclass(frozen=True)
class PromotionSummary:
    environment: str
    verdict: str
    time: str
    signed: bool  # a VSA bundle is present


@dataclass(frozen=True)
class Summary:
    evidence_dir: str
    release: dict[str, Any]
    files: list[EvidenceFile]
    sbom: SbomSummary | None = None
    provenance: ProvenanceSummary | None = None
    bundles: list[str] = field(default_factory=list)  # Sigstore bundles present (not verified here)
    promotions: list[PromotionSummary] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(evidence: EvidenceDir) -> Summary:
    release = evidence.load_release()
    subjects = {(s.name, s.sha256) for s in release.subjects}
    problems: list[str] = []
    files = []
    for name in (RELEASE_FILE, SUMS_FILE, SBOM_FILE, PROVENANCE_FILE):
        path = evidence.path(name)
        present = path.is_file()
        recorded = release.evidence.get(name, {}).get("sha256")
        if not present:
            state = "missing"
        elif name == RELEASE_FILE:
            state = "recorded"
        elif recorded is None:
            state = "unrecorded"
        else:
            state = "recorded" if sha256_bytes(path.read_bytes()) == recorded else "modified"
        if state == "modified":
            problems.append(f"{name} changed since release.json recorded its digest")
        files.append(EvidenceFile(name, present, state))
    return Summary(
        evidence_dir=str(evidence.root),
        release=_release_view(release),
        files=files,
        sbom=_sbom(evidence, subjects, problems),
        provenance=_provenance(evidence, subjects, problems),
        bundles=sorted(
            p.relative_to(evidence.root).as_posix() for p in evidence.path(BUNDLES_DIR).rglob("*.sigstore.json")
        ),
        promotions=_promotions(evidence, problems),
        problems=problems,
    )


def _promotions(evidence: EvidenceDir, problems: list[str]) -> list[PromotionSummary]:
    out = []
    for path in sorted(evidence.path(PROMOTIONS_DIR).glob("*.decision.json")):
        document = _read_json(evidence, path.relative_to(evidence.root).as_posix(), problems)
        if document is None:
            continue
        environment = str(document.get("environment", path.name.split(".")[0]))
        out.append(
            PromotionSummary(
                environment=environment,
                verdict=str(document.get("verdict")),
                time=str(document.get("time")),
                signed=evidence.path(f"{PROMOTIONS_DIR}/{environment}.vsa.sigstore.json").is_file(),
            )
        )
    return out


def _release_view(release: Release) -> dict[str, Any]:
    return {
        "id": release.id,
        "name": release.name,
        "version": release.version,
        "subjects": [{"name": s.name, "sha256": s.sha256, "size": s.size} for s in release.subjects],
        "source": release.source.model_dump(),
        "platform": release.build.platform,
        "builder": release.build.builder_id,
    }


def _read_json(evidence: EvidenceDir, name: str, problems: list[str]) -> dict[str, Any] | None:
    path = evidence.path(name)
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_bytes())
    except ValueError:
        problems.append(f"{name} is not valid JSON")
        return None
    if not isinstance(document, dict):
        problems.append(f"{name} is not a JSON object")
        return None
    return document


def _sbom(evidence: EvidenceDir, subjects: set[tuple[str, str]], problems: list[str]) -> SbomSummary | None:
    document = _read_json(evidence, SBOM_FILE, problems)
    if document is None:
        return None
    metadata = document.get("metadata") or {}
    root = metadata.get("component") or {}
    files = root.get("components") or [root]
    described = {
        (c.get("name"), h.get("content")) for c in files for h in c.get("hashes", []) if h.get("alg") == "SHA-256"
    }
    match = described == subjects
    if not match:
        problems.append("the SBOM describes other subjects than release.json")
    return SbomSummary(
        spec_version=document.get("specVersion"),
        serial_number=document.get("serialNumber"),
        components=len(document.get("components") or []),
        sources=[p.get("value") for p in metadata.get("properties", []) if p.get("name") == "pipeline-kit:sbom:source"],
        subjects_match=match,
    )


def _provenance(evidence: EvidenceDir, subjects: set[tuple[str, str]], problems: list[str]) -> ProvenanceSummary | None:
    document = _read_json(evidence, PROVENANCE_FILE, problems)
    if document is None:
        return None
    predicate = document.get("predicate") or {}
    definition = predicate.get("buildDefinition") or {}
    run = predicate.get("runDetails") or {}
    resolved = definition.get("resolvedDependencies") or [{}]
    described = {(s.get("name"), (s.get("digest") or {}).get("sha256")) for s in document.get("subject", [])}
    match = described == subjects
    if not match:
        problems.append("the provenance describes other subjects than release.json")
    return ProvenanceSummary(
        predicate_type=document.get("predicateType"),
        build_type=definition.get("buildType"),
        builder_id=(run.get("builder") or {}).get("id"),
        source=resolved[0].get("uri"),
        invocation=(run.get("metadata") or {}).get("invocationId"),
        subjects_match=match,
    )
