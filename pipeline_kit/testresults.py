"""Test results: JUnit XML reports read into one summary, and the in-toto test-result predicate
(`https://in-toto.io/attestation/test-result/v0.1`) that binds them to a release when signed.

A report file in the working tree is bound to nothing; the signed attestation is about the
release's subjects, so the checks gate reads that unless an environment opts in to files.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Any

from pipeline_kit.digest import hash_file
from pipeline_kit.errors import InputError

TEST_RESULT_PREDICATE = "https://in-toto.io/attestation/test-result/v0.1"


@dataclass(frozen=True)
class Summary:
    reports: tuple[str, ...]  # report paths, relative to where they were found
    passed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    skipped: int = 0
    digests: dict[str, str] = field(default_factory=dict)  # report -> sha256

    @property
    def executed(self) -> int:
        return len(self.passed) + len(self.failed)


def find_reports(workdir: Path, patterns: Sequence[str]) -> list[Path]:
    return sorted({Path(p) for pattern in patterns for p in glob(str(workdir / pattern), recursive=True)})


def read_junit(workdir: Path, paths: Sequence[Path]) -> Summary:
    """Every test case of the reports: passed, failed (failure or error) or skipped."""
    passed: list[str] = []
    failed: list[str] = []
    skipped = 0
    for path in paths:
        try:
            root = ET.parse(path).getroot()  # noqa: S314 - see the import
        except (ET.ParseError, OSError) as exc:
            raise InputError(path, None, f"not a readable JUnit XML report ({exc})") from exc
        for case in root.iter("testcase"):
            name = f"{case.get('classname', '')}.{case.get('name', '')}".strip(".")
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(name)
            elif case.find("skipped") is not None:
                skipped += 1
            else:
                passed.append(name)
    names = tuple(str(p.relative_to(workdir)) if p.is_relative_to(workdir) else str(p) for p in paths)
    digests = {name: hash_file(path).sha256 for name, path in zip(names, paths, strict=True)}
    return Summary(names, tuple(passed), tuple(failed), skipped, digests)


def predicate(summary: Summary, url: str | None = None) -> dict[str, Any]:
    """The test-result v0.1 predicate for `summary`."""
    return {
        "result": "FAILED" if summary.failed else "PASSED",
        "configuration": [{"name": name, "digest": {"sha256": digest}} for name, digest in summary.digests.items()],
        **({"url": url} if url else {}),
        "passedTests": list(summary.passed),
        "warnedTests": [],
        "failedTests": list(summary.failed),
    }


def from_predicate(data: dict[str, Any]) -> Summary:
    """The summary a signed test-result predicate states (malformed fields read as nothing passed)."""

    def names(key: str) -> tuple[str, ...]:
        value = data.get(key)
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    configuration = data.get("configuration")
    listed = configuration if isinstance(configuration, list) else []
    reports = tuple(str(c.get("name")) for c in listed if isinstance(c, dict))
    failed = names("failedTests")
    if data.get("result") != "PASSED" and not failed:
        failed = (f"(result {data.get('result')})",)
    return Summary(reports, names("passedTests"), failed)
