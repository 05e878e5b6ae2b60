"""signature: every subject's file (when here) has its recorded digest and a bundle that verifies
for an accepted signer."""

from __future__ import annotations

from pipeline_kit.gates.interface import Gate, Outcome, PromotionContext, from_verification, passed
from pipeline_kit.signing import subject_bundle


class SignatureGate(Gate):
    name = "signature"

    def evaluate(self, context: PromotionContext) -> Outcome:
        subjects = context.release.subjects
        targets = [s.name for s in subjects] + [subject_bundle(s.name) for s in subjects]
        problem = from_verification(context, targets, "the subjects' signatures")
        if problem is not None:
            return problem
        signers = sorted({c.detail for c in context.checks_for(*targets) if c.check == "signature"})
        if context.projected:
            return passed(f"{len(subjects)} subject(s), digests as recorded; {'; '.join(signers)}")
        return passed(f"{len(subjects)} subject(s) signed; {'; '.join(signers)}")
