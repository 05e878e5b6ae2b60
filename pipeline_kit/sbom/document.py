"""The CycloneDX 1.6 document, written as JSON directly.

The release subjects are the metadata component (one subject: itself; several: an application
named after the release whose sub-components are the subjects). The serial number is a UUIDv5
of the subject digests and the timestamp is the build's finish time, so the same release
always yields the same document.

The document is the one cyclonedx-python-lib's JSON serializer wrote for the same input, byte
for byte (tests/test_sbom_equivalence.py renders both): its orders (components by name,
version, bom-ref; hashes, references, properties and edges sorted), alphabetical keys, the
`$schema`/`bomFormat`/`specVersion` trailer. The library itself sorted through SortedSets of
objects compared field by field: 50,000 requirements took 47 s. It is still used for licences
(an SPDX expression or id is its to parse), once per distinct list of them, and its shipped
schema validates the result (`validate.py`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from packageurl import PackageURL

from pipeline_kit import __version__
from pipeline_kit.errors import EnvironmentFailure
from pipeline_kit.models import Release
from pipeline_kit.sbom.interface import SOURCE_PROPERTY, Hash, Package, SourceResult

SERIAL_NAMESPACE = uuid.UUID("6f1e2f3c-5b0e-4c8e-9a57-0c1f2a9d7b11")
RELEASE_PROPERTY = "pipeline-kit:release-id"
SCHEMA_URI = "http://cyclonedx.org/schema/bom-1.6.schema.json"
# What cyclonedx-python-lib's XsUri escapes so that a URL is a valid iri-reference.
_URI_ESCAPES = (
    (" ", "%20"),
    ('"', "%22"),
    ("'", "%27"),
    ("[", "%5B"),
    ("]", "%5D"),
    ("<", "%3C"),
    (">", "%3E"),
    ("{", "%7B"),
    ("}", "%7D"),
)

Json = dict[str, Any]
# The library orders hash lists as a prefix after its extensions: a last element above any hash.
_LAST = ("\U0010ffff", "")


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


def render(release: Release, results: Sequence[SourceResult]) -> bytes:
    """The SBOM as JSON bytes (not yet schema-validated)."""
    packages = merge_packages(results)
    root = _subject_component(release)
    properties = [(RELEASE_PROPERTY, release.id)] + [(SOURCE_PROPERTY, r.source) for r in results]
    metadata = _without_none(
        {
            "component": root,
            "properties": _properties(properties),
            "timestamp": _timestamp(release.build.finished_on),
            "tools": {"components": [{"name": "pipeline-kit", "type": "application", "version": __version__}]},
        }
    )
    components = sorted(
        (_component(p) for p in packages),
        key=lambda c: (c["name"], "version" not in c, c.get("version", ""), c["bom-ref"]),
    )
    document: Json = {}
    if components:
        document["components"] = components
    graph = _dependencies(root, packages, results)
    if graph:
        document["dependencies"] = graph
    document |= {
        "metadata": metadata,
        "serialNumber": serial_number(release).urn,
        "version": 1,
        "$schema": SCHEMA_URI,
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
    }
    if not results:
        mark_dependencies_unknown(document, root["bom-ref"])
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def _dependencies(root: Json, packages: Sequence[Package], results: Sequence[SourceResult]) -> list[Json]:
    """Every edge, sorted by ref: the subject's, and each package's whose source recorded a
    graph. A package with no recorded graph gets no entry: an empty one would claim "depends on
    nothing", where the truth is unknown."""
    known = {p.ref for p in packages}
    root_deps = dict.fromkeys(ref for r in results for ref in r.root_dependencies or ())
    edges = {root["bom-ref"]: tuple(root_deps)}
    edges |= {p.ref: p.dependencies for p in packages if p.dependencies is not None}
    for ref, dependencies in edges.items():
        unknown = sorted(set(dependencies) - known)
        if unknown:  # a source lists an edge to a package it does not list
            raise EnvironmentFailure(
                f"the SBOM's dependency graph names {unknown[0]!r} ({ref}), which no source lists; nothing written",
                hint="this is a pipeline-kit bug: please report it with the source file",
            )
    return [{"dependsOn": sorted(set(d)), "ref": ref} if d else {"ref": ref} for ref, d in sorted(edges.items())]


def mark_dependencies_unknown(document: Json, root: str) -> None:
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


def _timestamp(when: datetime | None) -> str | None:
    if when is None:
        return None
    return (when if when.tzinfo is not None else when.astimezone()).isoformat()


def _subject_component(release: Release) -> Json:
    files = [
        _without_none(
            {
                "bom-ref": f"subject:{subject.name}",
                "hashes": [{"alg": "SHA-256", "content": subject.sha256}],
                "name": subject.name,
                "type": "file",
                "version": release.version,
            }
        )
        for subject in sorted(release.subjects, key=lambda s: s.name)
    ]
    if len(files) == 1:
        return files[0]
    return _without_none(
        {
            "bom-ref": f"release:{release.id}",
            "components": files,
            "name": release.name,
            "type": "application",
            "version": release.version,
        }
    )


def _component(package: Package) -> Json:
    references = sorted(
        {
            (_uri(d.url), (*_hash_pairs(d.hashes), _LAST)): None
            for d in package.distributions  # what the library's set of references kept
        }
    )
    return _without_none(
        {
            "bom-ref": package.ref,
            "externalReferences": [
                _without_none({"hashes": _hashes(hashes[:-1]) or None, "type": "distribution", "url": url})
                for url, hashes in references
            ]
            or None,
            "hashes": _hashes(_hash_pairs(package.hashes)) or None,
            "licenses": _licenses(package.licenses) if package.licenses else None,
            "name": package.name,
            "properties": _properties(package.properties) or None,
            "purl": PackageURL.from_string(package.purl).to_string() if package.purl else None,
            "scope": package.scope,
            "type": "library",
            "version": package.version,
        }
    )


def _without_none(fields: Json) -> Json:
    return {k: v for k, v in fields.items() if v is not None}


def _hash_pairs(hashes: Iterable[Hash]) -> list[tuple[str, str]]:
    return sorted({(h.algorithm, h.value) for h in hashes})


def _hashes(pairs: Iterable[tuple[str, str]]) -> list[Json]:
    return [{"alg": alg, "content": content} for alg, content in pairs]


def _properties(pairs: Iterable[tuple[str, str]]) -> list[Json]:
    return [{"name": name, "value": value} for name, value in sorted(set(pairs))]


def _uri(url: str) -> str:
    for character, escaped in _URI_ESCAPES:
        url = url.replace(character, escaped)
    return url


def _licenses(values: tuple[str, ...]) -> list[Json]:
    return json.loads(_licenses_json(values))  # type: ignore[no-any-return]  # a fresh copy each time


@cache
def _licenses_json(values: tuple[str, ...]) -> str:
    """The `licenses` array the library writes for these licence strings (computed once per
    distinct tuple: a lockfile repeats a handful of licences)."""
    from pipeline_kit.sbom.licenses import licenses_json

    return licenses_json(values)
