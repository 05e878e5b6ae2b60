"""rollback-hold: a release rolled back out of an environment cannot return there until a root
cause is recorded (`pipeline-kit ledger annotate --env ENV --root-cause ...`).

A rollback is signed (a FAILED VSA naming the ledger head it was made on), so deleting ledger
lines does not lift a hold: a signed rollback whose ledger is shorter than its head is a
truncated ledger, and the hold stands. Only a signed root cause about the same release and
environment, signed after the rollback, lifts a signed hold; an `annotated` ledger line alone
lifts only a rollback the ledger alone records.
"""

from __future__ import annotations

from pipeline_kit._internal.text import counted
from pipeline_kit.gates.interface import Gate, Outcome, PromotionContext, deferred, denied, error, passed


class RollbackHoldGate(Gate):
    name = "rollback-hold"

    def evaluate(self, context: PromotionContext) -> Outcome:
        env = context.environment
        here = [e for e in context.history if e.environment == env]
        annotate = f"record the root cause: pipeline-kit ledger annotate --env {env} --root-cause ..."
        if context.holds is None and context.projected:
            return deferred(f"looks for signed rollbacks of this release from {env}")
        if context.holds is None:
            return error(f"cannot look for signed rollbacks: {context.verification_problem or 'no identity policy'}")
        for hold in context.holds.accepted:
            seq = hold.ledger_head[0] if hold.ledger_head else 0
            if len(context.history) <= seq:
                return denied(
                    f"signed rollback from {env} at {hold.signed_at:%Y-%m-%d %H:%MZ} ({hold.where}) was made on "
                    f"ledger seq {seq}, but the ledger has {counted(len(context.history), 'entry', 'entries')}: "
                    "truncated; the hold stands"
                )
            causes = context.root_causes.accepted if context.root_causes else ()
            if not any(cause.order >= hold.order for cause in causes):
                return denied(
                    f"rolled back from {env} at {hold.signed_at:%Y-%m-%d %H:%MZ} (signed, {hold.where}), and no "
                    f"signed root cause since; {annotate}"
                )
        rollbacks = [  # a compensation (a sibling failed) holds nothing
            e
            for e in here
            if e.kind == "rolled-back"
            and e.details.get("from") == context.release.id
            and e.details.get("compensation") is not True
        ]
        if not rollbacks:
            return passed(f"no rollback of this release from {env}")
        last = rollbacks[-1]
        annotated = [e for e in here if e.kind == "annotated" and e.seq > last.seq]
        if annotated:
            return passed(f"rolled back at {last.time:%Y-%m-%d %H:%MZ}; root cause recorded: {annotated[-1].reason}")
        return denied(
            f"rolled back from {env} at {last.time:%Y-%m-%d %H:%MZ} ({last.reason}); {annotate}",
            rollback_seq=last.seq,
        )
