"""The CycloneDX 1.6 document as cyclonedx-python-lib wrote it, before pipeline-kit wrote it
directly: the oracle tests/test_sbom_equivalence.py compares the kit's document with."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from cyclonedx.model import (
    ExternalReference,
    ExternalReferenceType,
    HashAlgorithm,
    HashType,
    Property,
    XsUri,
)
from cyclonedx.model.bom import Bom
from cyclonedx.model.bom_ref import BomRef
from cyclonedx.model.component import Component, ComponentScope, ComponentType
from cyclonedx.model.dependency import Dependency
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from pipeline_kit import __version__
from pipeline_kit.models import Release
from pipeline_kit.sbom.document import RELEASE_PROPERTY, mark_dependencies_unknown, merge_packages, serial_number
from pipeline_kit.sbom.interface import SOURCE_PROPERTY, Hash, Package, SourceResult
from pipeline_kit.sbom.licenses import license_objects


def render(release: Release, results: Sequence[SourceResult]) -> bytes:
    """The SBOM as JSON bytes (not yet schema-validated)."""
    packages = merge_packages(results)
    bom = Bom(serial_number=serial_number(release))
    bom.metadata.timestamp = release.build.finished_on  # type: ignore[assignment]
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="pipeline-kit", version=__version__)
    )
    bom.metadata.properties.add(Property(name=RELEASE_PROPERTY, value=release.id))
    for result in results:
        bom.metadata.properties.add(Property(name=SOURCE_PROPERTY, value=result.source))
    root = _subject_component(release)
    bom.metadata.component = root
    for package in packages:
        bom.components.add(_component(package))

    root_deps: dict[str, None] = {}
    for result in results:
        for ref in result.root_dependencies or ():
            root_deps[ref] = None
    graph = [Dependency(ref=root.bom_ref, dependencies=[Dependency(BomRef(r)) for r in root_deps])]
    graph += [
        Dependency(ref=BomRef(p.ref), dependencies=[Dependency(BomRef(d)) for d in p.dependencies])
        for p in packages
        if p.dependencies is not None
    ]
    bom.dependencies.update(graph)

    with warnings.catch_warnings():
        # The library warns when the subject has no recorded direct dependencies; that is
        # true of graph-less sources and says nothing wrong about the document.
        warnings.simplefilter("ignore", UserWarning)
        text = JsonV1Dot6(bom).output_as_string(indent=2)
    document = json.loads(text)
    _drop_invented_edges(document, {p.ref for p in packages if p.dependencies is None})
    if not results:
        mark_dependencies_unknown(document, str(root.bom_ref))
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def _drop_invented_edges(document: dict[str, Any], unknown: set[str]) -> None:
    """The library gives every component a dependency entry; an empty one claims "depends on
    nothing". Where the source recorded no graph that claim is unknown, so remove it."""
    if "dependencies" in document:
        document["dependencies"] = [
            d for d in document["dependencies"] if d["ref"] not in unknown or d.get("dependsOn")
        ]


def _subject_component(release: Release) -> Component:
    files = [
        Component(
            type=ComponentType.FILE,
            name=subject.name,
            version=release.version,
            bom_ref=f"subject:{subject.name}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=subject.sha256)],
        )
        for subject in release.subjects
    ]
    if len(files) == 1:
        return files[0]
    return Component(
        type=ComponentType.APPLICATION,
        name=release.name,
        version=release.version,
        bom_ref=f"release:{release.id}",
        components=files,
    )


def _component(package: Package) -> Component:
    return Component(
        type=ComponentType.LIBRARY,
        name=package.name,
        version=package.version,
        bom_ref=package.ref,
        purl=PackageURL.from_string(package.purl) if package.purl else None,
        hashes=_hashes(package.hashes),
        licenses=license_objects(package.licenses) if package.licenses else [],
        scope=ComponentScope(package.scope) if package.scope else None,
        external_references=[
            ExternalReference(
                type=ExternalReferenceType.DISTRIBUTION,
                url=XsUri(distribution.url),
                hashes=_hashes(distribution.hashes),
            )
            for distribution in package.distributions
        ],
        properties=[Property(name=name, value=value) for name, value in package.properties],
    )


def _hashes(hashes: Iterable[Hash]) -> list[HashType]:
    return [HashType(alg=HashAlgorithm(h.algorithm), content=h.value) for h in hashes]
