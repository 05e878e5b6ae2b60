"""pip requirements files: pinned requirements, their `--hash` options and nested `-r` files.

Unpinned requirements are listed without a version (the file does not fix one); constraint
files (`-c`) are not read, as they list no packages to install.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pipeline_kit._internal.files import excerpt, read_text
from pipeline_kit._internal.fs import relative_inside
from pipeline_kit._internal.redact import strip_credentials
from pipeline_kit.errors import InputError
from pipeline_kit.sbom.interface import (
    Distribution,
    Hash,
    Package,
    SbomSource,
    SourceResult,
    make_purl,
    normalize_python_name,
    parse_hash,
)

_COMMENT = re.compile(r"(^|\s+)#.*$")
_HASH_OPTION = re.compile(r"\s--hash[=\s]+(\S+)")
_INCLUDE = re.compile(r"^(-r|--requirement)(?:\s*=?\s*)(?P<path>\S+)$")
_EDITABLE = re.compile(r"^(-e|--editable)(?:\s*=?\s*)(?P<target>\S+)$")
# Options that change how pip installs, not what: nothing to record.
_IGNORED_OPTION = re.compile(
    r"^(-c|--constraint|-i|--index-url|--extra-index-url|-f|--find-links|--no-index|--pre|"
    r"--trusted-host|--prefer-binary|--only-binary|--no-binary|--require-hashes|--use-feature)\b"
)


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, line) with continuations joined and comments removed."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        line = raw
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = _COMMENT.sub("", pending + line).strip()
        pending = ""
        if line:
            yield start, line
    if pending.strip():
        yield start, _COMMENT.sub("", pending).strip()


class Requirements(SbomSource):
    kind = "requirements"
    patterns = ("requirements.txt", "requirements-*.txt", "requirements/*.txt")

    def read(self, path: Path, label: str) -> SourceResult:
        packages: dict[str, Package] = {}
        self._read_file(path, packages, seen=set(), root=project_root(path))
        return SourceResult(label, self.kind, tuple(packages.values()))

    def _read_file(self, path: Path, packages: dict[str, Package], seen: set[Path], root: Path) -> None:
        resolved = path.resolve()
        if resolved in seen:
            return
        seen.add(resolved)
        for number, line in logical_lines(read_text(path)):
            where = f"line {number}"
            include = _INCLUDE.match(line)
            if include:
                target = path.parent / include["path"]
                # `-r /proc/self/environ` would quote the environment, tokens and all, in an error
                if relative_inside(target, root) is None:
                    raise InputError(path, where, f"include {excerpt(include['path'])} leaves the project ({root})")
                self._read_file(target, packages, seen, root)
                continue
            editable = _EDITABLE.match(line)
            if editable:
                self._add(packages, self._editable(editable["target"]))
                continue
            if line.startswith("-"):
                if _IGNORED_OPTION.match(line):
                    continue
                raise InputError(path, where, f"unsupported option {excerpt(line.split()[0])}")
            self._add(packages, self._requirement(line, path, where))

    @staticmethod
    def _add(packages: dict[str, Package], package: Package) -> None:
        known = packages.get(package.ref)
        if known is None:
            packages[package.ref] = package
            return
        merged = tuple(dict.fromkeys(known.hashes + package.hashes))
        packages[package.ref] = Package(
            ref=known.ref,
            name=known.name,
            version=known.version,
            purl=known.purl,
            hashes=merged,
            distributions=known.distributions,
        )

    @staticmethod
    def _requirement(line: str, path: Path, where: str) -> Package:
        hashes: list[Hash] = []
        for token in _HASH_OPTION.findall(" " + line):
            parsed = parse_hash(token)
            if parsed is None:
                raise InputError(path, where, f"unsupported hash {excerpt(token)} (expected sha256:<hex>)")
            hashes.append(parsed)
        spec = _HASH_OPTION.sub("", " " + line).strip()
        spec = re.sub(r"\s--\S+.*$", "", spec)  # per-requirement install options
        # packaging loads in a few hundredths of a second: only where a requirements file is read
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            requirement = Requirement(spec)
        except InvalidRequirement:
            raise InputError(path, where, f"not a valid requirement: {excerpt(spec)}") from None
        version = None
        specifiers = list(requirement.specifier)
        if len(specifiers) == 1 and specifiers[0].operator in ("==", "===") and "*" not in specifiers[0].version:
            version = specifiers[0].version
        name = normalize_python_name(requirement.name)
        purl = make_purl("pypi", name, version)
        distributions: tuple[Distribution, ...] = ()
        if requirement.url:
            distributions = (Distribution(strip_credentials(requirement.url)),)
        return Package(
            ref=purl,
            name=requirement.name,
            version=version,
            purl=purl,
            hashes=tuple(dict.fromkeys(hashes)),
            distributions=distributions,
        )

    @staticmethod
    def _editable(target: str) -> Package:
        egg = re.search(r"#egg=([A-Za-z0-9._-]+)", target)
        name = egg.group(1) if egg else Path(target.split("#")[0].rstrip("/")).name or target
        purl = make_purl("pypi", normalize_python_name(name), None)
        return Package(
            ref=f"{purl}#editable",
            name=name,
            version=None,
            purl=purl,
            distributions=(Distribution(strip_credentials(target)),),
            properties=(("pipeline-kit:editable", "true"),),
        )


def project_root(path: Path) -> Path:
    """The project a requirements file belongs to (the nearest directory holding a pipeline-kit
    config or a .git), which its includes may not leave; else the file's own directory."""
    start = path.resolve().parent
    for directory in (start, *start.parents):
        if any((directory / marker).exists() for marker in (".git", "pipeline-kit.yml", "pipeline-kit.yaml")):
            return directory
    return start
