"""SBOM generation: read the project's dependency records, write a validated CycloneDX 1.6 SBOM.

Sources are one reader per kind (see `SOURCES`), detected from file names or configured.
The document is written directly (document.py); cyclonedx-python-lib is imported only to render
licences.
"""

from __future__ import annotations

import fnmatch
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline_kit._internal.files import excerpt
from pipeline_kit._internal.fs import relative_inside
from pipeline_kit.errors import EnvironmentFailure, InputError, UsageError
from pipeline_kit.evidence import SBOM_FILE, EvidenceDir
from pipeline_kit.models import Release
from pipeline_kit.sbom.cargo import CargoLock
from pipeline_kit.sbom.environment import Environment
from pipeline_kit.sbom.gosum import GoSum
from pipeline_kit.sbom.interface import Package, SbomSource, SourceResult
from pipeline_kit.sbom.npm import PackageLock
from pipeline_kit.sbom.pipfile import PipfileLock
from pipeline_kit.sbom.poetry import PoetryLock
from pipeline_kit.sbom.pylock import PyLock
from pipeline_kit.sbom.requirements import Requirements
from pipeline_kit.sbom.uv import UvLock

__all__ = ["ARTIFACT_ALONE", "SOURCES", "Package", "SbomSource", "SourceResult", "SourceSpec", "generate"]

SOURCES: dict[str, type[SbomSource]] = {
    source.kind: source
    for source in (
        UvLock,
        PoetryLock,
        PipfileLock,
        PyLock,
        Requirements,
        PackageLock,
        GoSum,
        CargoLock,
        Environment,
    )
}


@dataclass(frozen=True)
class SourceSpec:
    path: Path
    kind: str
    label: str


def kind_of(path: Path) -> str | None:
    """The source kind a file name identifies, if any."""
    for kind, source in SOURCES.items():
        for pattern in source.patterns:
            if fnmatch.fnmatch(path.name, pattern.rpartition("/")[2]) and (
                "/" not in pattern or path.parent.name == pattern.partition("/")[0]
            ):
                return kind
    return None


def detect(project: Path) -> list[SourceSpec]:
    """Every dependency record in the project directory that a reader understands. As for a `-r`
    include, each must be a file inside the project: a link leading out of it (to
    /proc/self/environ, say) is refused before a byte of it is read."""
    found = [
        SourceSpec(path, kind, path.relative_to(project).as_posix())
        for kind, source in SOURCES.items()
        for pattern in source.patterns
        for path in sorted(project.glob(pattern))
        if path.is_file()
    ]
    for spec in found:
        if relative_inside(spec.path, project) is None:
            raise InputError(spec.path, None, "a link leading out of the project: records are read only inside it")
    return found


def spec_for(project: Path, path_text: str, kind: str | None) -> SourceSpec:
    """A configured or command-line source; the kind comes from the name unless given."""
    path = (project / path_text) if not Path(path_text).is_absolute() else Path(path_text)
    if kind is None:
        kind = kind_of(path)
        if kind is None:
            raise UsageError(
                f"{path_text}: cannot tell what kind of dependency record this is",
                hint=f"give its type explicitly, one of: {', '.join(SOURCES)}",
            )
    if kind == "environment":
        return SourceSpec(path, kind, f"python:{path_text}")
    return SourceSpec(path, kind, path_text)


# Said wherever an SBOM is made without a dependency record (none found, or `sources: []`).
ARTIFACT_ALONE = "no dependency source: the SBOM lists the artifact alone"


def read_sources(specs: Sequence[SourceSpec]) -> list[SourceResult]:
    """What each source records; none at all is an SBOM of the artifact alone (`ARTIFACT_ALONE`),
    whose dependencies the document marks as unknown."""
    results = [SOURCES[spec.kind]().read(spec.path, spec.label) for spec in specs]
    for spec, result in zip(specs, results, strict=True):
        for package in result.packages:
            problem = package_problem(package)
            if problem:
                raise InputError(spec.path, f"package {excerpt(package.name)}", problem)
    return results


MAX_VERSION = 1024  # CycloneDX 1.6's limit on a component version


def package_problem(package: Package) -> str | None:
    """Why a package read from a record could not be a valid CycloneDX component, if it could
    not: caught here, naming the file, rather than as an invalid document after the fact."""
    from urllib.parse import urlsplit

    if package.version is not None and len(package.version) > MAX_VERSION:
        return f"version is longer than {MAX_VERSION} characters"
    for distribution in package.distributions:
        try:
            parts = urlsplit(distribution.url)
            parts.port  # noqa: B018 - raises on a malformed host or port
        except ValueError:
            return f"download location {excerpt(distribution.url)} is not a valid URL"
        if any(c.isspace() or not c.isprintable() for c in distribution.url):
            return f"download location {excerpt(distribution.url)} is not a valid URL"
    return None


def prepare(specs: Sequence[SourceSpec]) -> None:
    """Load what `generate` will need for `specs`: the schema validator, and for sources with
    licences cyclonedx-python-lib's renderer (tenths of a second). Cached, and safe in a thread:
    a failure is left to `generate`, which reports it."""
    from pipeline_kit.sbom.validate import warm

    warm(any(SOURCES[spec.kind].licensed for spec in specs))


def generate(release: Release, specs: Sequence[SourceSpec]) -> tuple[bytes, list[SourceResult]]:
    """The validated SBOM document for `release`, and what each source contributed."""
    from pipeline_kit.sbom.document import render
    from pipeline_kit.sbom.validate import schema_errors

    # while the sources are read (an environment source mostly waits on its interpreter)
    preload = threading.Thread(target=prepare, args=(specs,))
    preload.start()
    try:
        results = read_sources(specs)
    finally:
        preload.join()

    data = render(release, results)
    errors = schema_errors(json.loads(data))
    if errors:
        raise EnvironmentFailure(
            f"the generated SBOM does not validate against CycloneDX 1.6: {errors[0]}; nothing written",
            hint="this is a pipeline-kit bug: please report it with the source file",
        )
    return data, results


def write_sbom(
    evidence: EvidenceDir, release: Release, specs: Sequence[SourceSpec]
) -> tuple[Release, list[SourceResult]]:
    data, results = generate(release, specs)
    return evidence.record(release, SBOM_FILE, data), results
