"""The CycloneDX 1.6 document, built with cyclonedx-python-lib.

The release subjects are the metadata component (one subject: itself; several: an application
named after the release whose sub-components are the subjects). The serial number is a UUIDv5
of the subject digests and the timestamp is the build's finish time, so the same release
always yields the same document.
"""

from __future__ import annotations

import json
import uuid
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
from cyclonedx.model.license import License
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from pipeline_kit import __version__

try:  # cyclonedx-python-lib >= 11.1 moved the factory; the old path warns
    from cyclonedx.contrib.license.exceptions import InvalidSpdxLicenseException
    from cyclonedx.contrib.license.factories import LicenseFactory
except ImportError:  # pragma: no cover - older library versions
    from cyclonedx.exception.factory import InvalidSpdxLicenseException
    from cyclonedx.factory.license import LicenseFactory
from pipeline_kit.models import Release
from pipeline_kit.sbom.interface import SOURCE_PROPERTY, Hash, Package, SourceResult

SERIAL_NAMESPACE = uuid.UUID("6f1e2f3c-5b0e-4c8e-9a57-0c1f2a9d7b11")
RELEASE_PROPERTY = "pipeline-kit:release-id"


def serial_number(release: Release) -> uuid.UUID:
    canonical = "\n".join(sorted(f"{s.name}\0{s.sha256}" for s in release.subjects))
    return uuid.uuid5(SERIAL_NAMESPACE, canonical)


def merge_packages(results: Sequence[SourceResult]) -> list[Package]:
    """One package per ref across all sources; what two sources say of it is combined."""
    merged: dict[str, Package] = {}
    for result in results:
        for package in result.packages:
            known = merged.get(package.ref)
            if known is None:
                merged[package.ref] = package
                continue
            deps = None
            if known.dependencies is not None or package.dependencies is not None:
                deps = tuple(dict.fromkeys((known.dependencies or ()) + (package.dependencies or ())))
            merged[package.ref] = Package(
                ref=known.ref,
                name=known.name,
                version=known.version,
                purl=known.purl,
                hashes=tuple(dict.fromkeys(known.hashes + package.hashes)),
                licenses=tuple(dict.fromkeys(known.licenses + package.licenses)),
                distributions=tuple(dict.fromkeys(known.distributions + package.distributions)),
                dependencies=deps,
                scope="required" if "required" in (known.scope, package.scope) else known.scope,
                properties=tuple(dict.fromkeys(known.properties + package.properties)),
            )
    return [merged[ref] for ref in sorted(merged)]


def indexed(bom: Bom) -> Bom:
    """`bom`, its `register_dependency` finding a component's entry through an index.

    The library scans every dependency entry for each component it registers, and its output
    registers every component: quadratic in the components (20,000 took a minute). Same
    behaviour, same document; the index is rebuilt whenever the entries changed behind it. Bound
    to the instance, not a subclass: the serializer knows the class by its decorators.
    """
    index: dict[BomRef, Dependency] = {}
    indexed_at = [-1]

    def register_dependency(target: Any, depends_on: Iterable[Any] | None = None) -> None:
        if indexed_at[0] != len(bom.dependencies):
            index.clear()
            index.update((dependency.ref, dependency) for dependency in bom.dependencies)
        found = index.get(target.bom_ref)
        dependents = list(depends_on) if depends_on else []
        if found is not None:
            if dependents:
                found.dependencies.update(Dependency(ref=d.bom_ref) for d in dependents)
        else:
            found = Dependency(ref=target.bom_ref, dependencies=[Dependency(ref=d.bom_ref) for d in dependents])
            bom.dependencies.add(found)
            index[found.ref] = found
        indexed_at[0] = len(bom.dependencies)
        for dependent in dependents:  # registered too, with no dependents of their own
            register_dependency(dependent)

    bom.register_dependency = register_dependency  # type: ignore[method-assign]
    return bom


def render(release: Release, results: Sequence[SourceResult]) -> bytes:
    """The SBOM as JSON bytes (not yet schema-validated)."""
    packages = merge_packages(results)
    bom = indexed(Bom(serial_number=serial_number(release)))
    bom.metadata.timestamp = release.build.finished_on  # type: ignore[assignment]
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="pipeline-kit", version=__version__)
    )
    bom.metadata.properties.add(Property(name=RELEASE_PROPERTY, value=release.id))
    for result in results:
        bom.metadata.properties.add(Property(name=SOURCE_PROPERTY, value=result.source))
    root = _subject_component(release)
    bom.metadata.component = root
    licenses = LicenseFactory()
    for package in packages:
        bom.components.add(_component(package, licenses))

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
        _dependencies_unknown(document, str(root.bom_ref))
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def _drop_invented_edges(document: dict[str, Any], unknown: set[str]) -> None:
    """The library gives every component a dependency entry; an empty one claims "depends on
    nothing". Where the source recorded no graph that claim is unknown, so remove it."""
    if "dependencies" in document:
        document["dependencies"] = [
            d for d in document["dependencies"] if d["ref"] not in unknown or d.get("dependsOn")
        ]


def _dependencies_unknown(document: dict[str, Any], root: str) -> None:
    """No dependency record was read: what the artifact depends on is unknown, not "nothing".
    The subjects' empty dependency entries go, and a composition says so (CycloneDX 1.6
    `compositions`: the completeness of what is described, here of the root's dependencies)."""
    subjects = [root] + [c["bom-ref"] for c in document["metadata"]["component"].get("components", [])]
    graph = [d for d in document.get("dependencies", []) if d["ref"] not in subjects or d.get("dependsOn")]
    if graph:
        document["dependencies"] = graph
    else:
        document.pop("dependencies", None)
    document["compositions"] = [{"aggregate": "unknown", "dependencies": subjects}]


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


def _component(package: Package, factory: LicenseFactory) -> Component:
    return Component(
        type=ComponentType.LIBRARY,
        name=package.name,
        version=package.version,
        bom_ref=package.ref,
        purl=PackageURL.from_string(package.purl) if package.purl else None,
        hashes=_hashes(package.hashes),
        licenses=_licenses(package.licenses, factory),
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


def _licenses(values: Sequence[str], factory: LicenseFactory) -> list[License]:
    if len(values) == 1:
        return [factory.make_from_string(values[0])]
    # CycloneDX allows an expression only on its own; several licences are listed by id/name.
    return [factory.make_with_id(v) if _is_spdx_id(factory, v) else factory.make_with_name(v) for v in values]


def _is_spdx_id(factory: LicenseFactory, value: str) -> bool:
    try:
        factory.make_with_id(value)
    except InvalidSpdxLicenseException:
        return False
    return True
