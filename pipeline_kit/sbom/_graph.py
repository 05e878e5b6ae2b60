"""Dependency edges by name: lockfiles name a dependency, the SBOM needs its bom-ref."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pipeline_kit.sbom.interface import Package, normalize_python_name


@dataclass(frozen=True)
class Wanted:
    """A dependency as a lockfile names it: by name, sometimes pinned to a version."""

    name: str
    version: str | None = None


def link(
    nodes: Sequence[tuple[Package, Sequence[Wanted] | None]],
    normalize: Callable[[str], str] = normalize_python_name,
) -> tuple[Package, ...]:
    """Fill each package's `dependencies` with the refs of the listed packages it names.

    A name the lock does not list (an extra or a marker that excluded it) has no edge: the
    edge would point at a package that is not installed. None keeps "no graph recorded".
    """
    index = by_name(package for package, _ in nodes)
    linked = []
    for package, wanted in nodes:
        if wanted is None:
            linked.append(package)
            continue
        refs = resolve(wanted, index, normalize)
        linked.append(dataclasses.replace(package, dependencies=refs))
    return tuple(linked)


def by_name(
    packages: Iterable[Package], normalize: Callable[[str], str] = normalize_python_name
) -> dict[str, list[Package]]:
    index: dict[str, list[Package]] = {}
    for package in packages:
        index.setdefault(normalize(package.name), []).append(package)
    return index


def resolve(
    wanted: Iterable[Wanted],
    index: dict[str, list[Package]],
    normalize: Callable[[str], str] = normalize_python_name,
) -> tuple[str, ...]:
    refs: dict[str, None] = {}
    for want in wanted:
        for candidate in index.get(normalize(want.name), ()):
            if want.version is None or candidate.version == want.version:
                refs[candidate.ref] = None
    return tuple(refs)
