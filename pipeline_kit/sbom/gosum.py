"""Go modules from go.sum.

go.sum lists two kinds of line: `<module> <version> h1:<hash>` for a module whose code the
build downloaded, and `<module> <version>/go.mod h1:<hash>` for one whose go.mod alone was read
during version selection. Only the first kind is code in the build, so only those become
components; their `h1:` directory hash is kept as a property (it is not a file hash).
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline_kit._internal.files import read_text
from pipeline_kit.errors import InputError
from pipeline_kit.sbom.interface import Package, SbomSource, SourceResult, make_purl

_LINE = re.compile(r"^(?P<module>\S+) (?P<version>v\S+?)(?P<gomod>/go\.mod)? (?P<hash>h1:[A-Za-z0-9+/=]+)$")


class GoSum(SbomSource):
    kind = "go"
    patterns = ("go.sum",)

    def read(self, path: Path, label: str) -> SourceResult:
        packages: dict[str, Package] = {}
        for number, raw in enumerate(read_text(path).splitlines(), start=1):
            line = raw.strip()
            if not line:
                continue
            match = _LINE.match(line)
            if match is None:
                raise InputError(path, f"line {number}", "expected '<module> <version>[/go.mod] h1:<hash>'")
            if match["gomod"]:
                continue
            module, version = match["module"], match["version"]
            namespace, _, name = module.rpartition("/")
            purl = make_purl("golang", name, version, namespace=namespace or None)
            packages.setdefault(
                purl,
                Package(
                    ref=purl,
                    name=module,
                    version=version,
                    purl=purl,
                    properties=(("pipeline-kit:go:h1", match["hash"]),),
                ),
            )
        return SourceResult(label, self.kind, tuple(packages.values()))
