"""Pipfile.lock: the `default` and `develop` package sets with their hashes (no graph)."""

from __future__ import annotations

from pathlib import Path

from pipeline_kit._internal.files import expect, read_json
from pipeline_kit._internal.redact import strip_credentials
from pipeline_kit.errors import InputError
from pipeline_kit.sbom.interface import (
    Distribution,
    Package,
    SbomSource,
    SourceResult,
    make_purl,
    normalize_python_name,
    parse_hash,
)


class PipfileLock(SbomSource):
    kind = "pipfile"
    patterns = ("Pipfile.lock",)

    def read(self, path: Path, label: str) -> SourceResult:
        data = expect(read_json(path), dict, path, "(top level)")
        if "default" not in data and "develop" not in data:
            raise InputError(path, None, "no `default` or `develop` section; is this a Pipfile.lock?")
        packages: dict[str, Package] = {}
        for section, scope in (("default", "required"), ("develop", "optional")):
            for name, raw in expect(data.get(section, {}), dict, path, section).items():
                where = f"{section}.{name}"
                entry = expect(raw, dict, path, where)
                version = entry.get("version")
                if version is not None:
                    version = expect(version, str, path, f"{where}.version").removeprefix("==")
                hashes = []
                for i, text in enumerate(expect(entry.get("hashes", []), list, path, f"{where}.hashes")):
                    parsed = parse_hash(text) if isinstance(text, str) else None
                    if parsed is None:
                        raise InputError(path, f"{where}.hashes[{i}]", "expected sha256:<hex>")
                    hashes.append(parsed)
                distributions = tuple(
                    Distribution(strip_credentials(entry[key]))
                    for key in ("git", "file", "path")
                    if isinstance(entry.get(key), str)
                )
                purl = make_purl("pypi", normalize_python_name(name), version)
                if purl in packages:  # listed in both sections: it is a runtime dependency
                    continue
                packages[purl] = Package(
                    ref=purl,
                    name=name,
                    version=version,
                    purl=purl,
                    hashes=tuple(hashes),
                    distributions=distributions,
                    scope="required" if scope == "required" else "optional",
                )
        return SourceResult(label, self.kind, tuple(packages.values()))
