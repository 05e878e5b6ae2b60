"""checks: JUnit XML reports of the release's tests, all passed and enough of them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from glob import glob

from pipeline_kit.gates.interface import Gate, Options, Outcome, PromotionContext, denied, error, passed


class ChecksOptions(Options):
    junit: str | list[str]  # glob(s) relative to the working directory
    min: int = 1  # fewer executed tests than this is "not enough data", a denial


class ChecksGate(Gate):
    name = "checks"
    options_model = ChecksOptions
    options: ChecksOptions

    def evaluate(self, context: PromotionContext) -> Outcome:
        patterns = [self.options.junit] if isinstance(self.options.junit, str) else self.options.junit
        paths = sorted({p for pattern in patterns for p in glob(str(context.workdir / pattern), recursive=True)})
        if not paths:
            return error(f"no JUnit report matches {', '.join(patterns)}: no data is not a pass")
        tests = failures = skipped = 0
        failing: list[str] = []
        for path in paths:
            root = ET.parse(path).getroot()  # noqa: S314 - see the import
            for case in root.iter("testcase"):
                tests += 1
                if case.find("failure") is not None or case.find("error") is not None:
                    failures += 1
                    failing.append(f"{case.get('classname', '')}.{case.get('name', '')}".strip("."))
                elif case.find("skipped") is not None:
                    skipped += 1
        executed = tests - skipped
        evidence = {"reports": len(paths), "tests": tests, "failures": failures, "skipped": skipped}
        if failures:
            return denied(f"{failures} of {tests} test(s) failed: {', '.join(failing[:3])}", **evidence)
        if executed < self.options.min:
            return denied(f"{executed} test(s) ran, at least {self.options.min} required", **evidence)
        return passed(f"{executed} test(s) passed in {len(paths)} report(s), {skipped} skipped", **evidence)
