"""rollback-hold: a release rolled back out of an environment cannot return there until a root
cause is recorded (`pipeline-kit ledger annotate --env ENV --root-cause ...`)."""

from __future__ import annotations

from pipeline_kit.gates.interface import Gate, Outcome, PromotionContext, denied, passed


class RollbackHoldGate(Gate):
    name = "rollback-hold"

    def evaluate(self, context: PromotionContext) -> Outcome:
        here = [e for e in context.history if e.environment == context.environment]
        rollbacks = [e for e in here if e.kind == "rolled-back" and e.details.get("from") == context.release.id]
        if not rollbacks:
            return passed(f"no rollback of this release from {context.environment}")
        last = rollbacks[-1]
        annotated = [e for e in here if e.kind == "annotated" and e.seq > last.seq]
        if annotated:
            return passed(f"rolled back at {last.time:%Y-%m-%d %H:%MZ}; root cause recorded: {annotated[-1].reason}")
        return denied(
            f"rolled back from {context.environment} at {last.time:%Y-%m-%d %H:%MZ} ({last.reason}); "
            f"record the root cause: pipeline-kit ledger annotate --env {context.environment} --root-cause ...",
            rollback_seq=last.seq,
        )
