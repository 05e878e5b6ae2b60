"""sbom: a signed SBOM attestation about exactly this release, no denied licence, and a
vulnerability report (OSV-Scanner, pip-audit or grype JSON) under the threshold."""

from __future__ import annotations

import json
import re
from glob import glob
from typing import Any, Literal

from pydantic import Field

from pipeline_kit._internal.text import counted
from pipeline_kit.evidence import SBOM_FILE
from pipeline_kit.gates.interface import (
    Gate,
    Options,
    Outcome,
    PromotionContext,
    denied,
    error,
    from_verification,
    passed,
)
from pipeline_kit.sbom.interface import SOURCE_PROPERTY
from pipeline_kit.signing import SBOM_BUNDLE

Severity = Literal["low", "medium", "high", "critical"]
RANK = {"unknown": 4, "low": 1, "medium": 2, "moderate": 2, "high": 3, "critical": 4}


class SbomOptions(Options):
    deny_licenses: tuple[str, ...] = ()
    vulnerabilities: str | None = None  # path or glob of the scanner's JSON report
    fail_on: Severity = "high"  # a finding at or above this severity counts
    max_findings: int = Field(default=0, ge=0)  # how many counted findings are tolerated
    # the vulnerability report is a file bound to nothing: read only when the environment says so
    unsigned_reports: bool = False


class SbomGate(Gate):
    name = "sbom"
    options_model = SbomOptions
    options: SbomOptions

    def evaluate(self, context: PromotionContext) -> Outcome:
        problem = from_verification(context, [SBOM_BUNDLE, SBOM_FILE], "the SBOM")
        if problem is not None:
            return problem
        document = json.loads(context.evidence.path(SBOM_FILE).read_bytes())
        components = document.get("components", [])
        offending = self._denied_licenses(components)
        if offending:
            return denied(f"denied licence: {offending[0]}", components=offending)
        kind = "SBOM (signed in CI)" if context.projected else "signed SBOM"
        alone = not components and not any(
            p.get("name") == SOURCE_PROPERTY for p in (document.get("metadata") or {}).get("properties", [])
        )
        described = (
            " of the artifact alone (no dependency source)" if alone else f", {counted(len(components), 'component')}"
        )
        reasons = [f"{kind}{described}, no denied licence"]
        if self.options.vulnerabilities:
            if not self.options.unsigned_reports:
                return error(
                    f"the vulnerability report {self.options.vulnerabilities} is an unsigned file bound to nothing: "
                    "set unsigned-reports: true on this gate to accept it"
                )
            outcome = self._vulnerabilities(context)
            if outcome.verdict != "passed":
                return outcome
            reasons.append(outcome.reason)
        return passed("; ".join(reasons))

    def _denied_licenses(self, components: list[dict[str, Any]]) -> list[str]:
        deny = {d.lower() for d in self.options.deny_licenses}
        found = []
        for component in components:
            for choice in component.get("licenses", []):
                text = (
                    (choice.get("license") or {}).get("id")
                    or (choice.get("license") or {}).get("name")
                    or choice.get("expression")
                    or ""
                )
                tokens = {t.lower() for t in re.split(r"[\s()]+", text) if t and t.upper() not in ("AND", "OR", "WITH")}
                if tokens & deny:
                    found.append(f"{component.get('name')}@{component.get('version')} ({text})")
        return found

    def _vulnerabilities(self, context: PromotionContext) -> Outcome:
        pattern = self.options.vulnerabilities or ""
        paths = sorted(glob(str(context.workdir / pattern)))
        if not paths:
            return error(f"no vulnerability report matches {pattern}: no data is not a pass")
        threshold = RANK[self.options.fail_on]
        counted = []
        total = 0
        for path in paths:
            with open(path, encoding="utf-8") as handle:
                report = json.load(handle)
            findings = list(_findings(report, path))
            total += len(findings)
            counted += [f for f in findings if RANK.get(f[1], 4) >= threshold]
        if len(counted) > self.options.max_findings:
            worst = ", ".join(f"{vid} ({sev})" for vid, sev in counted[:5])
            return denied(
                f"{len(counted)} finding(s) at or above {self.options.fail_on}, "
                f"{self.options.max_findings} allowed: {worst}",
                findings=[v for v, _ in counted],
            )
        return passed(f"{total} vulnerability finding(s), {len(counted)} at or above {self.options.fail_on}")


def _findings(report: Any, path: str) -> list[tuple[str, str]]:
    """(id, severity) from OSV-Scanner, grype or pip-audit JSON; unknown severity counts as critical."""
    if isinstance(report, dict) and "matches" in report:  # grype
        return [
            (m["vulnerability"]["id"], str(m["vulnerability"].get("severity", "unknown")).lower())
            for m in report["matches"]
        ]
    if isinstance(report, dict) and "results" in report:  # OSV-Scanner
        out = []
        for result in report["results"]:
            for package in result.get("packages", []):
                severities = {}
                for group in package.get("groups", []):
                    for vid in group.get("ids", []):
                        severities[vid] = _cvss_rank(group.get("max_severity"))
                for vulnerability in package.get("vulnerabilities", []):
                    vid = vulnerability["id"]
                    level = (vulnerability.get("database_specific") or {}).get("severity")
                    out.append((vid, str(level).lower() if level else severities.get(vid, "unknown")))
        return out
    if isinstance(report, dict) and "dependencies" in report:  # pip-audit (no severities)
        return [(v["id"], "unknown") for d in report["dependencies"] for v in d.get("vulns", [])]
    if isinstance(report, list):  # pip-audit's older list form
        return [(v["id"], "unknown") for d in report for v in d.get("vulns", [])]
    raise ValueError(f"{path}: not an OSV-Scanner, grype or pip-audit JSON report")


def _cvss_rank(score: Any) -> str:
    try:
        value = float(score)
    except (TypeError, ValueError):
        return "unknown"
    return "critical" if value >= 9 else "high" if value >= 7 else "medium" if value >= 4 else "low"
