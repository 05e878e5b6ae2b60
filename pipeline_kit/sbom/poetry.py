"""poetry.lock (lock format 1.x and 2.x): packages, file hashes, sources and the graph."""

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
    Scope,
    SourceResult,
    checked_hash,
    make_purl,
    normalize_python_name,
)


def python_files(files: Any, path: Path, where: str) -> tuple[Distribution, ...]:
    """`[{file = "x.whl", hash = "sha256:..."}]` -> distributions."""
    out = []
    for i, entry in enumerate(expect(files, list, path, where)):
        entry = expect(entry, dict, path, f"{where}[{i}]")
        name = entry.get("file") or entry.get("url")
        if not isinstance(name, str):
            raise InputError(path, f"{where}[{i}]", "file entry has no `file` name")
        digest = checked_hash(entry["hash"], path, f"{where}[{i}].hash") if "hash" in entry else None
        out.append(Distribution(strip_credentials(name), (digest,) if digest else ()))
    return tuple(out)


class PoetryLock(SbomSource):
    kind = "poetry"
    patterns = ("poetry.lock",)

    def read(self, path: Path, label: str) -> SourceResult:
        data = read_toml(path)
        entries = expect(data.get("package", []), list, path, "package")
        metadata = expect(data.get("metadata", {}), dict, path, "metadata")
        legacy_files = expect(metadata.get("files", {}), dict, path, "metadata.files")
        nodes: list[tuple[Package, list[Wanted] | None]] = []
        for i, raw in enumerate(entries):
            where = f"package[{i}]"
            entry = expect(raw, dict, path, where)
            name = expect(entry.get("name"), str, path, f"{where}.name")
            version = expect(entry.get("version"), str, path, f"{where}.version")
            files = entry.get("files", legacy_files.get(name, []))
            distributions = python_files(files, path, f"{where}.files")
            qualifiers = {}
            source = entry.get("source")
            if isinstance(source, dict) and isinstance(source.get("url"), str):
                url = strip_credentials(source["url"])
                if source.get("type") in ("legacy", "explicit", "supplemental", "primary"):
                    qualifiers["repository_url"] = url
                else:
                    distributions += (Distribution(url),)
            purl = make_purl("pypi", normalize_python_name(name), version, qualifiers=qualifiers)
            deps = expect(entry.get("dependencies", {}), dict, path, f"{where}.dependencies")
            nodes.append(
                (
                    Package(
                        ref=purl,
                        name=name,
                        version=version,
                        purl=purl,
                        distributions=distributions,
                        scope=self._scope(entry),
                    ),
                    [Wanted(dep) for dep in deps],
                )
            )
        return SourceResult(label, self.kind, link(nodes))

    @staticmethod
    def _scope(entry: dict[str, Any]) -> Scope:
        groups = entry.get("groups")
        if isinstance(groups, list):
            return "required" if "main" in groups else "optional"
        return "optional" if entry.get("category") == "dev" or entry.get("optional") else "required"
