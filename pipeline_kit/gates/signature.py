"""signature: every subject's file (when here) has its recorded digest and a bundle that verifies
for an accepted signer."""

from __future__ import annotations

from pipeline_kit.gates.interface import Gate, Outcome, PromotionContext, denied, error, passed
from pipeline_kit.signing import subject_bundle


class SignatureGate(Gate):
    name = "signature"

    def evaluate(self, context: PromotionContext) -> Outcome:
        if context.verification is None:
            return error(f"evidence not verified: {context.verification_problem}")
        targets = [s.name for s in context.release.subjects] + [
            subject_bundle(s.name) for s in context.release.subjects
        ]
        checks = context.checks_for(*targets)
        failed = [c for c in checks if not c.ok]
        if failed:
            return denied(f"{failed[0].target}: {failed[0].detail}", failed=[c.target for c in failed])
        if len(checks) != 2 * len(context.release.subjects):
            return error("verification did not cover every subject")
        signers = sorted({c.detail for c in checks if c.check == "signature"})
        return passed(f"{len(context.release.subjects)} subject(s) signed; {'; '.join(signers)}")
