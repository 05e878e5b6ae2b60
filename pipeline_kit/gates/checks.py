"""checks: the release's tests all passed and enough of them ran, and required forge checks on
the signed provenance's commit succeeded.

Test results come from the signed test-result attestation about the release's subjects
(`pipeline-kit attest --junit ...`); JUnit files in the working tree are bound to nothing and are
read only when the environment opts in (`unsigned-reports: true`), which the verdict says.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from pipeline_kit.evidence import TEST_RESULT_BUNDLE
from pipeline_kit.forge import CommitCheck
from pipeline_kit.gates.interface import (
    Gate,
    Options,
    Outcome,
    PromotionContext,
    deferred,
    denied,
    error,
    forge_and_commit,
    passed,
)
from pipeline_kit.testresults import Summary, find_reports, from_predicate, read_junit


class ChecksOptions(Options):
    junit: str | list[str] | None = None  # glob(s) relative to the working directory
    min: int = Field(default=1, ge=1)  # fewer executed tests than this is "not enough data", a denial
    # names of the forge's checks/statuses on the release's commit that must have succeeded
    forge: tuple[str, ...] = ()
    unsigned_reports: bool = False  # read the JUnit files themselves instead of the signed results

    @model_validator(mode="after")
    def _something_to_check(self) -> ChecksOptions:
        if self.junit is None and not self.forge:
            raise ValueError("give junit report globs, forge check names, or both")
        return self


_WORST = {"success": 0, "pending": 1, "failure": 2}


class ChecksGate(Gate):
    name = "checks"
    options_model = ChecksOptions
    options: ChecksOptions

    def evaluate(self, context: PromotionContext) -> Outcome:
        outcomes = []
        if self.options.forge:
            outcomes.append(self._forge(context))
        if self.options.junit is not None:
            outcomes.append(self._tests(context))
        for outcome in outcomes:  # the first that does not pass decides
            if outcome.verdict != "passed":
                return outcome
        return passed("; ".join(o.reason for o in outcomes), **{k: v for o in outcomes for k, v in o.evidence.items()})

    def _forge(self, context: PromotionContext) -> Outcome:
        target = forge_and_commit(context, "commit checks")
        if isinstance(target, Outcome):
            return target
        forge, commit = target
        # a name may come back more than once (a check run and a commit status): the worst counts,
        # so a status of the same name never overrides a failed check run
        found: dict[str, CommitCheck] = {}
        for check in forge.commit_checks(commit):
            if check.name not in found or _WORST[check.state] > _WORST[found[check.name].state]:
                found[check.name] = check
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

    def _tests(self, context: PromotionContext) -> Outcome:
        if self.options.unsigned_reports:
            patterns = [self.options.junit] if isinstance(self.options.junit, str) else list(self.options.junit or [])
            paths = find_reports(context.workdir, patterns)
            if not paths:
                return error(f"no JUnit report matches {', '.join(patterns)}: no data is not a pass")
            return self._judge(read_junit(context.workdir, paths), "UNSIGNED report(s), bound to nothing")
        if context.verification is None:
            return error(f"evidence not verified: {context.verification_problem}")
        failed = [c for c in context.checks_for(TEST_RESULT_BUNDLE) if not c.ok]
        if failed:
            return denied(f"{TEST_RESULT_BUNDLE}: {failed[0].detail}")
        if context.verification.test_results is None and context.projected:
            patterns = [self.options.junit] if isinstance(self.options.junit, str) else list(self.options.junit or [])
            paths = find_reports(context.workdir, patterns)
            if not paths:
                return deferred(f"the signed results of {', '.join(patterns)} (`pipeline-kit attest --junit`)")
            return self._judge(read_junit(context.workdir, paths), "the reports here, as CI would sign them")
        if context.verification.test_results is None:
            return denied(
                "no signed test results about this release: run `pipeline-kit attest --junit ...` after the tests "
                "(or set unsigned-reports: true to read the files, bound to nothing)"
            )
        return self._judge(from_predicate(context.verification.test_results), "signed test results")

    def _judge(self, summary: Summary, source: str) -> Outcome:
        evidence = {
            "source": source,
            "reports": len(summary.reports),
            "tests": summary.executed + summary.skipped,
            "failures": len(summary.failed),
            "skipped": summary.skipped,
        }
        if summary.failed:
            total = summary.executed + summary.skipped
            return denied(
                f"{len(summary.failed)} of {total} test(s) failed: {', '.join(summary.failed[:3])}", **evidence
            )
        if summary.executed < self.options.min:
            return denied(
                f"{summary.executed} test(s) ran, at least {self.options.min} required ({source})", **evidence
            )
        ran = f"{summary.executed} test(s) passed in {len(summary.reports)} report(s), {summary.skipped} skipped"
        return passed(f"{ran} ({source})", **evidence)
