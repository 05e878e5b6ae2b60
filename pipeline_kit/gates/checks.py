"""checks: JUnit XML reports of the release's tests, all passed and enough of them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from glob import glob

from pydantic import model_validator

from pipeline_kit.gates.interface import (
    Gate,
    Options,
    Outcome,
    PromotionContext,
    denied,
    error,
    forge_and_commit,
    passed,
)


class ChecksOptions(Options):
    junit: str | list[str] | None = None  # glob(s) relative to the working directory
    min: int = 1  # fewer executed tests than this is "not enough data", a denial
    # names of the forge's checks/statuses on the release's commit that must have succeeded
    forge: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _something_to_check(self) -> ChecksOptions:
        if self.junit is None and not self.forge:
            raise ValueError("give junit report globs, forge check names, or both")
        return self


class ChecksGate(Gate):
    name = "checks"
    options_model = ChecksOptions
    options: ChecksOptions

    def evaluate(self, context: PromotionContext) -> Outcome:
        outcomes = []
        if self.options.forge:
            outcomes.append(self._forge(context))
        if self.options.junit is not None:
            outcomes.append(self._junit(context))
        for outcome in outcomes:  # the first that does not pass decides
            if outcome.verdict != "passed":
                return outcome
        return passed("; ".join(o.reason for o in outcomes), **{k: v for o in outcomes for k, v in o.evidence.items()})

    def _forge(self, context: PromotionContext) -> Outcome:
        target = forge_and_commit(context, "commit checks")
        if isinstance(target, Outcome):
            return target
        forge, commit = target
        found = {check.name: check for check in forge.commit_checks(commit)}
        missing = [name for name in self.options.forge if name not in found]
        if missing:
            return denied(f"required check(s) never ran on {commit[:12]}: {', '.join(missing)}")
        pending = [name for name in self.options.forge if found[name].state == "pending"]
        failed = [f"{name} ({found[name].detail})" for name in self.options.forge if found[name].state == "failure"]
        if failed:
            return denied(f"required check(s) failed: {', '.join(failed)}")
        if pending:
            return denied(f"required check(s) still running: {', '.join(pending)}")
        return passed(
            f"{len(self.options.forge)} required forge check(s) passed", forge_checks=list(self.options.forge)
        )

    def _junit(self, context: PromotionContext) -> Outcome:
        assert self.options.junit is not None
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
