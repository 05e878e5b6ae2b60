"""Gate results and the analysis after a deploy as JUnit XML, for CI test reports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_kit.promotion.deciding import Plan

if TYPE_CHECKING:
    from pipeline_kit.analysis import Analysis


def write_junit(plans: Sequence[Plan], path: Path, analysis: Analysis | None = None) -> None:
    """Gate results as JUnit XML: a test suite per environment, a test case per gate; and the
    analysis after the deploy, a test case per check (failing with its failed measurements)."""
    import xml.etree.ElementTree as ET

    suites = ET.Element("testsuites", name="pipeline-kit gates")
    for item in plans:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"promote {item.release.id} to {item.environment}",
            tests=str(len(item.results)),
            failures=str(sum(r.verdict == "denied" for r in item.results)),
            errors=str(sum(r.verdict == "error" for r in item.results)),
        )
        for result in item.results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"gates.{item.environment}",
                name=result.gate,
                time=f"{result.duration_ms / 1000:.3f}",
            )
            if result.verdict == "denied":
                ET.SubElement(case, "failure", message=result.reason).text = json.dumps(result.evidence, default=str)
            elif result.verdict == "error":
                ET.SubElement(case, "error", message=result.reason)
    if analysis is not None and plans:
        checks = sorted({r.check for r in analysis.results})
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"analysis of {plans[-1].release.id} in {plans[-1].environment}",
            tests=str(len(checks)),
        )
        for check in checks:
            case = ET.SubElement(suite, "testcase", classname=f"analysis.{plans[-1].environment}", name=check)
            bad = [r for r in analysis.results if r.check == check and r.verdict != "passed"]
            if bad:
                kind = "failure" if any(r.verdict == "failed" for r in bad) else "error"
                ET.SubElement(case, kind, message=bad[-1].detail).text = "\n".join(
                    f"{r.time:%H:%M:%S} {r.verdict}: {r.detail}" for r in bad
                )
    from pipeline_kit._internal.fs import atomic_write

    atomic_write(path, ET.tostring(suites, encoding="utf-8", xml_declaration=True))
