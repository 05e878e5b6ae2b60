"""previous-stage: the release passed the environment before this one (`after:`) and lived there
for `soak:` without being replaced, rolled back or failing to deploy there.

The proof is a signed VSA (see `pipeline_kit.vsa`): about exactly these subjects, for the `after`
environment, PASSED, signed by a trusted identity; soak counts from its verified signing time.
A signed rollback of the release out of `after` since that VSA denies. The ledger and the forge's
deployment records can only take a pass away (the release was replaced, its deploy failed or never
finished), never grant one: they are state a job can edit.
A forge that cannot be read is an error: the release may have been replaced since.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pipeline_kit.config import parse_duration
from pipeline_kit.gates.interface import Gate, Outcome, PromotionContext, deferred, denied, error, passed
from pipeline_kit.ledger import arrived, in_flight
from pipeline_kit.vsa import ANALYSIS_PASSED


@dataclass(frozen=True)
class Event:
    time: datetime
    kind: Literal["left", "failed"]
    source: str


def _short(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def setbacks(context: PromotionContext, environment: str, since: datetime) -> list[Event]:
    """What history says happened to this release in `environment` after `since`: another
    release arriving (it left) or its deploy failing, oldest first, from the ledger and forge."""
    release = context.release
    events = []
    for entry in context.history:
        if entry.environment != environment or entry.time < since:
            continue
        if (arrived(entry) or entry.kind == "rolled-back") and entry.release != release.id:
            events.append(Event(entry.time, "left", f"ledger seq {entry.seq}"))
        elif entry.kind == "deploy-failed" and entry.release == release.id:
            events.append(Event(entry.time, "failed", f"ledger seq {entry.seq}"))
    if context.forge is not None:
        for record in context.forge.deployments(environment):
            if record.time < since:
                continue
            ours = record.release == release.id if record.release else record.sha == release.source.commit
            source = f"{context.forge.name} deployment"
            if record.state == "success" and not ours:
                events.append(Event(record.time, "left", source))
            elif record.state in ("failure", "error") and ours:
                events.append(Event(record.time, "failed", source))
    return sorted(events, key=lambda event: event.time)


class PreviousStageGate(Gate):
    name = "previous-stage"

    def evaluate(self, context: PromotionContext) -> Outcome:
        environment = context.config.environments.get(context.environment)
        if environment is None:
            return error(f"no environment {context.environment!r} in the config")
        after = environment.after
        if after is None:
            return passed(f"{context.environment} is the first environment")
        release = context.release
        if context.upstream is None and context.projected:
            then = f", then {environment.soak} there" if environment.soak else ""
            return deferred(f"needs {after}'s signed promotion (VSA) first{then}")
        if context.upstream is None:
            why = context.verification_problem or "no identity policy to verify VSAs with"
            return error(f"cannot look for signed VSAs of {after}: {why}")
        proof = context.upstream.latest
        if proof is None:
            digest = release.subjects[0].sha256
            return denied(
                f"{after} never passed this release ({release.id[:12]}, sha256:{digest[:12]}...): "
                f"no signed VSA ({context.upstream.searched()})"
            )
        # a signed rollback out of `after` since its last PASSED VSA holds here too (the ledger's
        # `rolled-back` line is only an index: the signature is what counts)
        if context.upstream_holds is None:
            return error(f"cannot look for signed rollbacks from {after}")
        held = [h for h in context.upstream_holds.accepted if h.signed_at >= proof.signed_at]
        if held:
            return denied(
                f"rolled back out of {after} at {held[-1].signed_at:%Y-%m-%d %H:%MZ} (signed, {held[-1].where}) "
                f"after it passed there: promote it to {after} again once the root cause is recorded"
            )
        if context.config.environments[after].analysis is not None and ANALYSIS_PASSED not in (
            proof.predicate.get("verifiedLevels") or []
        ):
            return denied(f"{after}'s signed VSA for this release records no passed analysis ({proof.where})")
        unfinished = [e for e in in_flight(context.history, after) if e.release == release.id]
        if unfinished:
            return denied(
                f"the deploy of {release.id[:12]} to {after} never finished (ledger seq {unfinished[-1].seq}): "
                "it has not arrived there"
            )
        later = setbacks(context, after, proof.signed_at)
        if any(e.kind == "failed" for e in later):
            return denied(f"the deploy of {release.id[:12]} to {after} failed")
        left = next((e for e in later if e.kind == "left"), None)
        soak = parse_duration(environment.soak) if environment.soak else timedelta(0)
        lived = (left.time if left else context.now) - proof.signed_at
        evidence = {
            "after": after,
            "passed": proof.signed_at.isoformat(),
            "vsa": proof.where,
            "signer": proof.signer,
            "soak": environment.soak,
        }
        if lived >= soak:
            return passed(
                f"passed {after} at {proof.signed_at:%Y-%m-%d %H:%MZ} (signed VSA, {proof.where}); "
                f"{_short(lived)} there, soak {environment.soak or 'none'}",
                **evidence,
            )
        if left is not None:
            return denied(
                f"left {after} after {_short(lived)} (at {left.time:%H:%MZ}, {left.source}); "
                f"soak is {environment.soak}",
                **evidence,
            )
        ready = proof.signed_at + soak
        return denied(
            f"soak {_short(lived)} of {environment.soak} in {after}, ready at {ready:%H:%MZ}",
            ready=ready.isoformat(),
            **evidence,
        )
