"""provenance: a signed provenance attestation about exactly this release, identical to the file,
naming the expected source, which release.json's copy of the source must equal."""

from __future__ import annotations

from pipeline_kit.evidence import PROVENANCE_FILE, RELEASE_FILE, SUMS_FILE
from pipeline_kit.gates.interface import Gate, Outcome, PromotionContext, from_verification, passed
from pipeline_kit.signing import PROVENANCE_BUNDLE


class ProvenanceGate(Gate):
    name = "provenance"

    def evaluate(self, context: PromotionContext) -> Outcome:
        problem = from_verification(
            context, [PROVENANCE_BUNDLE, PROVENANCE_FILE, RELEASE_FILE, SUMS_FILE], "the provenance"
        )
        if problem is not None:
            return problem
        source = next((c.detail for c in context.checks_for(PROVENANCE_FILE) if c.check == "source"), "")
        kind = "SLSA provenance (signed in CI)" if context.projected else "signed SLSA provenance"
        return passed(f"{kind} about this release; {source}")
