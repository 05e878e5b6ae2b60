"""uv.lock: packages, sdist/wheel hashes, sources and the dependency graph.

The entry whose source is the project directory itself (`editable = "."` or `virtual = "."`)
is the project being released: its direct dependencies become the SBOM subject's edges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline_kit._internal.files import excerpt, expect, read_toml
from pipeline_kit._internal.redact import strip_credentials
from pipeline_kit.errors import InputError
from pipeline_kit.sbom._graph import Wanted, by_name, link, resolve
from pipeline_kit.sbom.interface import (
    Distribution,
    Package,
    SbomSource,
    SourceResult,
    checked_hash,
    make_purl,
    normalize_python_name,
)

PYPI = ("https://pypi.org/simple", "https://pypi.org/simple/")


def _wanted(entries: Any, path: Path, where: str) -> list[Wanted]:
    out = []
    for i, dep in enumerate(expect(entries, list, path, where)):
        dep = expect(dep, dict, path, f"{where}[{i}]")
        out.append(Wanted(expect(dep.get("name"), str, path, f"{where}[{i}].name"), dep.get("version")))
    return out


def _distribution(entry: Any, path: Path, where: str) -> Distribution:
    entry = expect(entry, dict, path, where)
    location = entry.get("url") or entry.get("path") or entry.get("filename")
    if not isinstance(location, str):
        raise InputError(path, where, "has no url or path")
    digest = checked_hash(entry["hash"], path, f"{where}.hash") if "hash" in entry else None
    return Distribution(strip_credentials(location), (digest,) if digest else ())


class UvLock(SbomSource):
    kind = "uv"
    patterns = ("uv.lock",)

    def read(self, path: Path, label: str) -> SourceResult:
        data = read_toml(path)
        if not isinstance(data.get("version"), int):
            raise InputError(path, "version", "missing lock format version; is this a uv.lock?")
        entries = expect(data.get("package", []), list, path, "package")
        nodes: list[tuple[Package, list[Wanted] | None]] = []
        root: list[Wanted] | None = None
        for i, raw in enumerate(entries):
            where = f"package[{i}]"
            entry = expect(raw, dict, path, where)
            name = expect(entry.get("name"), str, path, f"{where}.name")
            version = entry.get("version")
            source = expect(entry.get("source", {}), dict, path, f"{where}.source")
            wanted = _wanted(entry.get("dependencies", []), path, f"{where}.dependencies")
            for group in ("optional-dependencies", "dev-dependencies"):
                for extra, deps in expect(entry.get(group, {}), dict, path, f"{where}.{group}").items():
                    wanted += _wanted(deps, path, f"{where}.{group}.{extra}")
            if source.get("editable") == "." or source.get("virtual") == ".":
                root = wanted
                continue
            distributions = []
            if "sdist" in entry:
                distributions.append(_distribution(entry["sdist"], path, f"{where}.sdist"))
            for j, wheel in enumerate(expect(entry.get("wheels", []), list, path, f"{where}.wheels")):
                distributions.append(_distribution(wheel, path, f"{where}.wheels[{j}]"))
            qualifiers = {}
            if isinstance(source.get("registry"), str) and source["registry"] not in PYPI:
                qualifiers["repository_url"] = strip_credentials(source["registry"])
            for key in ("git", "url"):
                if isinstance(source.get(key), str):
                    qualifiers["vcs_url" if key == "git" else "download_url"] = strip_credentials(source[key])
            purl = make_purl(
                "pypi",
                normalize_python_name(name),
                version if isinstance(version, str) else None,
                qualifiers=qualifiers,
            )
            nodes.append(
                (
                    Package(
                        ref=purl,
                        name=name,
                        version=version if isinstance(version, str) else None,
                        purl=purl,
                        distributions=tuple(distributions),
                    ),
                    wanted,
                )
            )
        # uv's lock is universal (every platform's packages): a dependency missing from it is a
        # broken lock, not an edge to drop
        known = {normalize_python_name(package.name) for package, _ in nodes}
        owners: list[tuple[str, list[Wanted] | None]] = [(package.name, wanted) for package, wanted in nodes]
        for owner, listed in [*owners, ("the project", root)]:
            missing = [w.name for w in listed or () if normalize_python_name(w.name) not in known]
            if missing:
                raise InputError(path, f"dependencies of {owner}", f"{excerpt(missing[0])} is not in the lock")
        packages = link(nodes)
        roots = resolve(root, by_name(packages)) if root is not None else None
        return SourceResult(label, self.kind, packages, roots)
