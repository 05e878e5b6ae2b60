"""pylock.toml (PEP 751): packages, their sdist/wheel/archive hashes and recorded dependencies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline_kit._internal.files import expect, read_toml
from pipeline_kit._internal.redact import strip_credentials
from pipeline_kit.errors import InputError
from pipeline_kit.sbom._graph import Wanted, link
from pipeline_kit.sbom.interface import (
    Distribution,
    Package,
    SbomSource,
    SourceResult,
    hex_hash,
    make_purl,
    normalize_python_name,
)


def _file(entry: Any, path: Path, where: str) -> Distribution:
    entry = expect(entry, dict, path, where)
    location = entry.get("url") or entry.get("path") or entry.get("name")
    if not isinstance(location, str):
        raise InputError(path, where, "has no url, path or name")
    hashes = expect(entry.get("hashes", {}), dict, path, f"{where}.hashes")
    parsed = tuple(h for alg, value in sorted(hashes.items()) if (h := hex_hash(alg, str(value))))
    return Distribution(strip_credentials(location), parsed)


class PyLock(SbomSource):
    kind = "pylock"
    patterns = ("pylock.toml", "pylock.*.toml")

    def read(self, path: Path, label: str) -> SourceResult:
        data = read_toml(path)
        lock_version = data.get("lock-version")
        if not (isinstance(lock_version, str) and lock_version.split(".")[0] == "1"):
            raise InputError(path, "lock-version", f'expected "1.x", got {lock_version!r}')
        nodes: list[tuple[Package, list[Wanted] | None]] = []
        for i, raw in enumerate(expect(data.get("packages", []), list, path, "packages")):
            where = f"packages[{i}]"
            entry = expect(raw, dict, path, where)
            name = expect(entry.get("name"), str, path, f"{where}.name")
            version = entry.get("version")
            if version is not None:
                version = expect(version, str, path, f"{where}.version")
            distributions = []
            if "sdist" in entry:
                distributions.append(_file(entry["sdist"], path, f"{where}.sdist"))
            for j, wheel in enumerate(expect(entry.get("wheels", []), list, path, f"{where}.wheels")):
                distributions.append(_file(wheel, path, f"{where}.wheels[{j}]"))
            if "archive" in entry:
                distributions.append(_file(entry["archive"], path, f"{where}.archive"))
            qualifiers = {}
            for key, qualifier in (("vcs", "vcs_url"), ("directory", "download_url")):
                table = entry.get(key)
                if isinstance(table, dict) and isinstance(table.get("url") or table.get("path"), str):
                    qualifiers[qualifier] = strip_credentials(table.get("url") or table["path"])
            index = entry.get("index")
            if isinstance(index, str) and index.rstrip("/") != "https://pypi.org/simple":
                qualifiers["repository_url"] = strip_credentials(index)
            purl = make_purl("pypi", normalize_python_name(name), version, qualifiers=qualifiers)
            deps = entry.get("dependencies")
            wanted = None
            if deps is not None:
                wanted = [
                    Wanted(
                        expect(
                            expect(d, dict, path, f"{where}.dependencies[{k}]").get("name"),
                            str,
                            path,
                            f"{where}.dependencies[{k}].name",
                        ),
                        d.get("version"),
                    )
                    for k, d in enumerate(expect(deps, list, path, f"{where}.dependencies"))
                ]
            nodes.append(
                (
                    Package(
                        ref=purl,
                        name=name,
                        version=version,
                        purl=purl,
                        distributions=tuple(distributions),
                    ),
                    wanted,
                )
            )
        return SourceResult(label, self.kind, link(nodes))
