"""SLSA provenance v1 in an in-toto Statement v1, about exactly the release's subjects.

Filled from the CI context (see reference/supply-chain-formats.md for where every field comes
from); a local build says so in its builder id and internal parameters.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from pipeline_kit._internal.proc import git
from pipeline_kit.ci import CIContext
from pipeline_kit.config import Config
from pipeline_kit.digest import hash_file, sha256_bytes
from pipeline_kit.evidence import PROVENANCE_FILE, SBOM_FILE, SIGNED_RECORDS, SUMS_FILE, EvidenceDir
from pipeline_kit.models import Model, Release

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://github.com/pipeline-kit/pipeline-kit/blob/main/docs/buildtype.md#v1"


class ResourceDescriptor(Model):
    name: str | None = None
    uri: str | None = None
    digest: dict[str, str] | None = None
    download_location: str | None = None
    media_type: str | None = None
    annotations: dict[str, Any] | None = None


class BuildDefinition(Model):
    build_type: str
    external_parameters: dict[str, Any]
    internal_parameters: dict[str, Any] | None = None
    resolved_dependencies: tuple[ResourceDescriptor, ...] | None = None


class Builder(Model):
    id: str
    version: dict[str, str] | None = None
    builder_dependencies: tuple[ResourceDescriptor, ...] | None = None


class BuildMetadata(Model):
    invocation_id: str | None = None
    started_on: datetime | None = None
    finished_on: datetime | None = None


class RunDetails(Model):
    builder: Builder
    metadata: BuildMetadata | None = None
    byproducts: tuple[ResourceDescriptor, ...] | None = None


class Provenance(Model):
    build_definition: BuildDefinition
    run_details: RunDetails


class Statement(Model):
    type_: str = Field(default=STATEMENT_TYPE, alias="_type")
    subject: tuple[ResourceDescriptor, ...] = Field(min_length=1)
    predicate_type: str
    predicate: Provenance


def statement_for(release: Release, ci: CIContext, evidence: EvidenceDir, workdir: Path) -> Statement:
    external: dict[str, Any] = dict(ci.external_parameters)
    if release.build.command:
        external["command"] = list(release.build.command)
    return Statement(
        subject=tuple(ResourceDescriptor(name=s.name, digest={"sha256": s.sha256}) for s in release.subjects),
        predicate_type=SLSA_PROVENANCE_V1,
        predicate=Provenance(
            build_definition=BuildDefinition(
                build_type=BUILD_TYPE,
                external_parameters=external,
                internal_parameters=dict(ci.internal_parameters) or None,
                resolved_dependencies=_resolved_dependencies(release, evidence, workdir) or None,
            ),
            run_details=RunDetails(
                builder=Builder(id=release.build.builder_id, version=dict(ci.builder_version) or None),
                metadata=BuildMetadata(
                    invocation_id=release.build.invocation_uri,
                    started_on=release.build.started_on,
                    finished_on=release.build.finished_on,
                ),
                byproducts=_byproducts(evidence) or None,
            ),
        ),
    )


def _resolved_dependencies(release: Release, evidence: EvidenceDir, workdir: Path) -> list[ResourceDescriptor]:
    """The source commit, then each dependency record the SBOM was made from."""
    resolved = []
    source = release.source
    if source.repository:
        uri = f"git+{source.repository}" + (f"@{source.ref}" if source.ref else "")
        # the commit's time, signed: where a change's lead time to an environment starts
        committed = source.commit and git(workdir, "show", "-s", "--format=%cI", "--end-of-options", source.commit)
        resolved.append(
            ResourceDescriptor(
                uri=uri,
                digest={"gitCommit": source.commit} if source.commit else None,
                annotations={"committedAt": committed} if committed else None,
            )
        )
    for name in _sbom_sources(evidence):
        path = workdir / name
        if not name.startswith("python:") and path.is_file():
            resolved.append(ResourceDescriptor(name=name, digest={"sha256": hash_file(path).sha256}))
    return resolved


def _sbom_sources(evidence: EvidenceDir) -> list[str]:
    try:
        document = json.loads(evidence.path(SBOM_FILE).read_bytes())
        properties = document.get("metadata", {}).get("properties", [])
        return [p["value"] for p in properties if p.get("name") == "pipeline-kit:sbom:source"]
    except (OSError, ValueError, AttributeError, TypeError):
        return []


def _byproducts(evidence: EvidenceDir) -> list[ResourceDescriptor]:
    out = []
    for name, media_type in (
        (SUMS_FILE, "text/plain"),
        (SBOM_FILE, "application/vnd.cyclonedx+json"),
        *((name, "application/json") for name in SIGNED_RECORDS),
    ):
        path = evidence.path(name)
        if path.is_file():
            out.append(
                ResourceDescriptor(
                    name=name,
                    digest={"sha256": sha256_bytes(path.read_bytes())},
                    media_type=media_type,
                )
            )
    return out


def write_provenance(
    release: Release, ci: CIContext, evidence: EvidenceDir, workdir: Path, config: Config | None = None
) -> Release:
    """The provenance about `release`; first the records the config asks for (the classified
    migrations, the contracts), so the provenance signs their digests as byproducts."""
    if config is not None and config.migrations is not None:
        from pipeline_kit.migrations import record_migrations

        release = record_migrations(config.migrations, evidence, release, workdir)
    if config is not None and config.contracts is not None:
        from pipeline_kit.contracts import record_contracts

        release = record_contracts(config.contracts, evidence, release, workdir)
    statement = statement_for(release, ci, evidence, workdir)
    return evidence.record(release, PROVENANCE_FILE, statement.to_json(exclude_none=True))
