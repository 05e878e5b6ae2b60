"""provenance: a signed provenance attestation about exactly this release, identical to the file,
naming the expected source."""

from __future__ import annotations

from pipeline_kit.evidence import PROVENANCE_FILE
from pipeline_kit.gates.interface import Gate, Outcome, PromotionContext, denied, error, passed
from pipeline_kit.signing import PROVENANCE_BUNDLE


class ProvenanceGate(Gate):
    name = "provenance"

    def evaluate(self, context: PromotionContext) -> Outcome:
        if context.verification is None:
            return error(f"evidence not verified: {context.verification_problem}")
        checks = context.checks_for(PROVENANCE_BUNDLE, PROVENANCE_FILE)
        failed = [c for c in checks if not c.ok]
        if failed:
            return denied(f"{failed[0].target}: {failed[0].check}: {failed[0].detail}")
        if not checks:
            return error("provenance was not verified")
        source = next((c.detail for c in checks if c.check == "source"), "")
        return passed(f"signed SLSA provenance about this release; {source}")
