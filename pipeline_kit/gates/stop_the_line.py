"""stop-the-line: no promotion while the org's line is stopped (docs/stop-the-line.md).

Always on when the config has `org:`. The line's state is read before the gates run, from the
org ledger's verified statements (`pipeline_kit.stopline`): a standing stop denies, naming who
stopped the line (the certificate's verified identity), when (the log's verified time) and why;
an org ledger that cannot be read, or an entry in it that does not verify, is an error (unknown
is not running), which `--break-glass --reason` may waive, recorded. A verified stop is never
waived: `resume-the-line`, signed by someone `org.resume.identity` accepts, lifts it.
"""

from __future__ import annotations

from pipeline_kit.config import Config
from pipeline_kit.errors import UsageError
from pipeline_kit.gates.interface import Gate, Outcome, PromotionContext, denied, error, passed

RESUME = "lift it: pipeline-kit resume-the-line --reason ... (signed by someone org.resume.identity accepts)"


class StopTheLineGate(Gate):
    name = "stop-the-line"

    def config_problem(self, config: Config) -> str | None:
        if config.org is None:
            return "needs an org: section (the org ledger, who may stop and who may resume)"
        from pipeline_kit.identity import IdentityPolicy

        for role, settings in (("stop", config.org.stop), ("resume", config.org.resume)):
            try:  # what a verifier would refuse to use at all, refused at load
                IdentityPolicy.from_config(settings.identity)
            except UsageError as exc:  # noqa: PERF203 - two roles, each named
                return f"org.{role}.identity: {exc.message}"
        return None

    def evaluate(self, context: PromotionContext) -> Outcome:
        state = context.line
        if state is None:
            why = context.verification_problem or "no identity policy or trust root to verify its statements with"
            return error(f"the org's line was not read: {why}; it counts as stopped")
        seen = {"org_ledger": state.ledger, "seq": state.head[0], "hash": state.head[1]}
        if state.unreadable:
            seen["unreadable"] = list(state.unreadable)
        if state.standing:
            return denied(f"{state.summary()}; {RESUME}", stops=[s.id for s in state.standing], **seen)
        if state.unreadable:
            return error(f"{state.summary()}; --break-glass --reason ... promotes anyway, recorded", **seen)
        return passed(state.summary(), **seen)
