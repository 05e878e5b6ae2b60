"""npm package-lock.json (lockfile v2 and v3): packages by install path, integrity, licences and
the graph resolved the way Node resolves `require` (nearest enclosing node_modules first).

The `""` entry is the project being released; workspace links (`link: true`) point at another
entry and are not packages of their own. One name@version installed at several paths is one
component.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import posixpath
from pathlib import Path
from typing import Any

from pipeline_kit._internal.files import excerpt, expect, read_json
from pipeline_kit._internal.redact import strip_credentials
from pipeline_kit.errors import InputError
from pipeline_kit.sbom.interface import (
    HASH_ALGORITHMS,
    Distribution,
    Hash,
    Package,
    SbomSource,
    SourceResult,
    make_purl,
)

DEPENDENCY_FIELDS = ("dependencies", "optionalDependencies", "peerDependencies", "devDependencies")


def integrity_hash(value: str) -> Hash | None:
    """SRI `sha512-<base64>` -> Hash with a hex value (the strongest one listed)."""
    best = None
    for token in value.split():
        algorithm, _, encoded = token.partition("-")
        name = HASH_ALGORITHMS.get(algorithm)
        if not name:
            continue
        try:
            best = Hash(name, base64.b64decode(encoded, validate=True).hex())
        except (binascii.Error, ValueError):
            return None
    return best


def npm_purl(name: str, version: str | None) -> str:
    namespace, _, short = name.rpartition("/") if name.startswith("@") else ("", "", name)
    return make_purl("npm", short, version, namespace=namespace or None)


class PackageLock(SbomSource):
    kind = "npm"
    patterns = ("package-lock.json", "npm-shrinkwrap.json")
    licensed = True

    def read(self, path: Path, label: str) -> SourceResult:
        data = expect(read_json(path), dict, path, "(top level)")
        version = data.get("lockfileVersion")
        if version not in (2, 3):
            raise InputError(
                path,
                "lockfileVersion",
                f"expected 2 or 3, got {version!r}",
                hint="lockfile v1 predates npm 7; run `npm install --lockfile-version 3`",
            )
        entries = expect(data.get("packages"), dict, path, "packages")
        by_path: dict[str, dict[str, Any]] = {}
        packages: dict[str, Package] = {}
        ref_of_path: dict[str, str] = {}
        for install_path, raw in entries.items():
            where = f"packages[{install_path!r}]"
            entry = expect(raw, dict, path, where)
            if install_path == "" or entry.get("link"):
                continue
            by_path[install_path] = entry
            name = entry.get("name") or install_path.rpartition("node_modules/")[2]
            # a scope alone (`@/`, `@acme`) or an empty name is no package name
            if not isinstance(name, str) or not name.strip("@/") or name.endswith("/") or name == "@":
                raise InputError(path, where, "cannot tell the package name")
            pkg_version = entry.get("version")
            if pkg_version is not None:
                pkg_version = expect(pkg_version, str, path, f"{where}.version")
            try:
                purl = npm_purl(name, pkg_version)
            except ValueError:
                raise InputError(path, where, f"not a package name: {excerpt(name)}") from None
            ref_of_path[install_path] = purl
            if purl in packages:
                continue
            digest = None
            if "integrity" in entry:
                integrity = entry["integrity"]
                digest = integrity_hash(integrity) if isinstance(integrity, str) else None
                if digest is None:
                    raise InputError(path, f"{where}.integrity", f"malformed integrity {excerpt(str(integrity))}")
            resolved = entry.get("resolved")
            license_field = entry.get("license")
            packages[purl] = Package(
                ref=purl,
                name=name,
                version=pkg_version,
                purl=purl,
                hashes=(digest,) if digest else (),
                licenses=(license_field,) if isinstance(license_field, str) and license_field else (),
                distributions=(Distribution(strip_credentials(resolved)),)
                if isinstance(resolved, str) and resolved
                else (),
                scope="optional" if entry.get("dev") or entry.get("optional") else "required",
            )
        # Link entries (workspaces) resolve to their target's ref.
        for install_path, raw in entries.items():
            if isinstance(raw, dict) and raw.get("link") and isinstance(raw.get("resolved"), str):
                target = ref_of_path.get(raw["resolved"])
                if target:
                    ref_of_path[install_path] = target
        edges: dict[str, dict[str, None]] = {ref: {} for ref in packages}
        for install_path, entry in by_path.items():
            for dep in _names(entry):
                target = _resolve(install_path, dep, ref_of_path)
                if target:
                    edges[ref_of_path[install_path]][target] = None
        root = expect(entries.get("", {}), dict, path, "packages['']")
        roots = tuple(dict.fromkeys(t for dep in _names(root) if (t := _resolve("", dep, ref_of_path))))
        linked = tuple(dataclasses.replace(p, dependencies=tuple(edges[p.ref])) for p in packages.values())
        return SourceResult(label, self.kind, linked, roots)


def _names(entry: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for field in DEPENDENCY_FIELDS:
        value = entry.get(field)
        if isinstance(value, dict):
            names.extend(k for k in value if isinstance(k, str))
    return names


def _resolve(install_path: str, name: str, ref_of_path: dict[str, str]) -> str | None:
    """Node's lookup: <path>/node_modules/<name>, then each enclosing node_modules, then root."""
    base = install_path
    while True:
        candidate = posixpath.join(base, "node_modules", name) if base else f"node_modules/{name}"
        if candidate in ref_of_path:
            return ref_of_path[candidate]
        if not base:
            return None
        # climb out of ".../node_modules/<pkg>" (or a scoped "@scope/pkg")
        head, sep, _ = base.rpartition("node_modules/")
        base = head.rstrip("/") if sep else ""
