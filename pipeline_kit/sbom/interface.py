"""What an SBOM source reads: packages with identity, hashes, licences and dependency edges.

A source never invents or drops a package: it reports exactly what its file lists. The one
exception, stated by each reader, is the lock entry for the project being released itself (the
`.` entry of uv.lock, the `""` entry of package-lock.json): it is the SBOM's subject, not one
of its dependencies, and its direct dependencies become the subject's edges.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

# CycloneDX hash algorithm names, keyed by the names lockfiles use.
HASH_ALGORITHMS = {
    "md5": "MD5",
    "sha1": "SHA-1",
    "sha256": "SHA-256",
    "sha384": "SHA-384",
    "sha512": "SHA-512",
}
HEX_LENGTH = {"MD5": 32, "SHA-1": 40, "SHA-256": 64, "SHA-384": 96, "SHA-512": 128}  # CycloneDX's patterns

Scope = Literal["required", "optional"]
# The SBOM metadata property naming each source read (none: the SBOM lists the artifact alone).
SOURCE_PROPERTY = "pipeline-kit:sbom:source"


@dataclass(frozen=True)
class Hash:
    algorithm: str  # CycloneDX name: "SHA-256"
    value: str  # lowercase hex


@dataclass(frozen=True)
class Distribution:
    """One downloadable file of a package (a wheel, an sdist) and its hashes."""

    url: str
    hashes: tuple[Hash, ...] = ()


@dataclass(frozen=True)
class Package:
    """One package as a source lists it. `ref` is unique within an SBOM (the bom-ref)."""

    ref: str
    name: str
    version: str | None
    purl: str | None
    hashes: tuple[Hash, ...] = ()
    licenses: tuple[str, ...] = ()
    distributions: tuple[Distribution, ...] = ()
    # refs of direct dependencies; None when the source records no graph for this package
    dependencies: tuple[str, ...] | None = None
    scope: Scope | None = None
    properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SourceResult:
    """The packages one source file lists, and the project's direct dependencies if known."""

    source: str  # how the SBOM names the source: a path relative to the project, or `python:...`
    kind: str
    packages: tuple[Package, ...]
    root_dependencies: tuple[str, ...] | None = None


class SbomSource(ABC):
    """Reads one kind of dependency record (a lockfile, an environment)."""

    kind: ClassVar[str]
    # File names (glob patterns) that identify this kind when detecting sources in a project.
    patterns: ClassVar[tuple[str, ...]] = ()
    # Whether its packages may carry licences (whose rendering imports cyclonedx-python-lib).
    licensed: ClassVar[bool] = False

    @abstractmethod
    def read(self, path: Path, label: str) -> SourceResult:
        """Packages listed by `path`; `label` is how the SBOM and errors name the source.

        Malformed content raises InputError naming the file and the entry.
        """


def normalize_python_name(name: str) -> str:
    """PEP 503 normalisation, which the pypi purl type also requires."""
    return re.sub(r"[-_.]+", "-", name).lower()


def hex_hash(algorithm: str, value: str) -> Hash | None:
    """A Hash from a lockfile's `algo:hex` parts, or None for algorithms CycloneDX lacks."""
    name = HASH_ALGORITHMS.get(algorithm.lower().replace("-", ""))
    if name is None or len(value) != HEX_LENGTH[name] or not re.fullmatch(r"[0-9a-fA-F]+", value):
        return None
    return Hash(name, value.lower())


def parse_hash(text: str) -> Hash | None:
    """`sha256:abcd...` or `sha256=abcd...` -> Hash."""
    algorithm, sep, value = text.replace("=", ":", 1).partition(":")
    return hex_hash(algorithm, value) if sep else None


def checked_hash(value: object, path: Path, where: str) -> Hash:
    """A lockfile's `algo:hex` hash, or an InputError naming the file and field: every reader
    refuses a malformed hash rather than dropping it (a dropped hash is a weaker SBOM, silently)."""
    from pipeline_kit._internal.files import excerpt
    from pipeline_kit.errors import InputError

    parsed = parse_hash(value) if isinstance(value, str) else None
    if parsed is None:
        raise InputError(path, where, f"malformed hash {excerpt(str(value))} (expected sha256:<hex>)")
    return parsed


def make_purl(
    kind: str,
    name: str,
    version: str | None,
    *,
    namespace: str | None = None,
    qualifiers: dict[str, str] | None = None,
) -> str:
    from packageurl import PackageURL

    return str(
        PackageURL(
            type=kind,
            namespace=namespace,
            name=name,
            version=version,
            qualifiers=qualifiers or None,
        ).to_string()
    )
