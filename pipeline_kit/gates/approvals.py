"""approvals: enough distinct people approved the change, none of them its author or the promoter.

Asked of the forge at the moment of promotion: on GitHub the reviews of the merged pull request
that contains the release's commit; on GitLab the approvals of the merged merge request and of
the deployment GitLab opened for the promotion job (protected environments). A standing rejection
(changes requested, a rejected deployment) denies whatever the count. No forge, no commit, or a
forge that cannot answer: error.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline_kit._internal.text import counted
from pipeline_kit.gates.interface import Gate, Options, Outcome, PromotionContext, denied, forge_and_commit, passed


class ApprovalsOptions(Options):
    min: int = Field(default=2, ge=1)  # `min: 0` would be a gate that always passes
    exclude: tuple[Literal["author", "promoter"], ...] = ("author", "promoter")


class ApprovalsGate(Gate):
    name = "approvals"
    options_model = ApprovalsOptions
    options: ApprovalsOptions

    def evaluate(self, context: PromotionContext) -> Outcome:
        target = forge_and_commit(context, "approvals")
        if isinstance(target, Outcome):
            return target
        forge, commit = target
        found = forge.approvals(commit, context.environment)
        if found.rejected:
            return denied(
                f"approvals: rejected by {', '.join(found.rejected)} in {found.source}", rejected=list(found.rejected)
            )
        excluded: set[str] = set()
        if "author" in self.options.exclude:
            excluded.update(found.authors)
        if "promoter" in self.options.exclude:
            excluded.add(context.actor.partition(":")[2] or context.actor)
        eligible = sorted(set(found.approvers) - excluded)
        evidence = {"approvers": eligible, "excluded": sorted(excluded & set(found.approvers)), "source": found.source}
        if len(eligible) < self.options.min:
            ignored = sorted(excluded & set(found.approvers))
            note = f" (not counted: {', '.join(ignored)})" if ignored else ""
            if found.stale:
                note += f" (approved an earlier head than the merged one: {', '.join(found.stale)})"
            return denied(
                f"approvals: {len(eligible)} of {self.options.min} from {found.source}"
                f"{': ' + ', '.join(eligible) if eligible else ''}{note}",
                **evidence,
            )
        return passed(f"{counted(len(eligible), 'approval')} ({', '.join(eligible)}) from {found.source}", **evidence)
