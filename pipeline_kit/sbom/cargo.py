"""Cargo.lock (format v1 to v4): crates, their sha256 checksums, sources and the graph."""

from __future__ import annotations

from pathlib import Path

from pipeline_kit._internal.files import expect, read_toml
from pipeline_kit._internal.redact import strip_credentials
from pipeline_kit.errors import InputError
from pipeline_kit.sbom._graph import Wanted, link
from pipeline_kit.sbom.interface import Hash, Package, SbomSource, SourceResult, hex_hash, make_purl

CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"


class CargoLock(SbomSource):
    kind = "cargo"
    patterns = ("Cargo.lock",)

    def read(self, path: Path, label: str) -> SourceResult:
        data = read_toml(path)
        legacy_checksums = data.get("metadata", {})  # format v1 kept checksums here
        nodes: list[tuple[Package, list[Wanted] | None]] = []
        for i, raw in enumerate(expect(data.get("package", []), list, path, "package")):
            where = f"package[{i}]"
            entry = expect(raw, dict, path, where)
            name = expect(entry.get("name"), str, path, f"{where}.name")
            version = expect(entry.get("version"), str, path, f"{where}.version")
            source = entry.get("source")
            checksum = entry.get("checksum") or legacy_checksums.get(f"checksum {name} {version} ({source})")
            digest: Hash | None = None
            if checksum is not None:
                digest = hex_hash("sha256", expect(checksum, str, path, f"{where}.checksum"))
                if digest is None:
                    raise InputError(path, f"{where}.checksum", "expected a hex sha256")
            qualifiers = {}
            if isinstance(source, str) and source != CRATES_IO:
                kind, _, url = source.partition("+")
                key = "vcs_url" if kind == "git" else "repository_url"
                qualifiers[key] = strip_credentials(url)
            purl = make_purl("cargo", name, version, qualifiers=qualifiers)
            wanted = []
            for k, dep in enumerate(expect(entry.get("dependencies", []), list, path, f"{where}.dependencies")):
                parts = expect(dep, str, path, f"{where}.dependencies[{k}]").split(" ")
                wanted.append(Wanted(parts[0], parts[1] if len(parts) > 1 else None))
            nodes.append(
                (
                    Package(
                        ref=purl,
                        name=name,
                        version=version,
                        purl=purl,
                        hashes=(digest,) if digest else (),
                    ),
                    wanted,
                )
            )
        return SourceResult(label, self.kind, link(nodes, normalize=lambda name: name))
