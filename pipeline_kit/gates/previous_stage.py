"""previous-stage: the release reached the environment before this one (`after:`) and lived
there for `soak:` without being replaced or rolled back before that."""

from __future__ import annotations

from datetime import timedelta

from pipeline_kit.config import parse_duration
from pipeline_kit.gates.interface import Gate, Outcome, PromotionContext, denied, error, passed

ARRIVALS = ("promoted", "waived")


def _short(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


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
        digest = release.subjects[0].sha256
        arrivals = [
            e for e in context.history if e.environment == after and e.kind in ARRIVALS and e.release == release.id
        ]
        if not arrivals:
            return denied(f"{after} never received this release ({release.id}, sha256:{digest[:12]}...)")
        arrived = arrivals[-1]
        later = [e for e in context.history if e.environment == after and e.seq > arrived.seq]
        if any(e.kind == "deploy-failed" and e.release == release.id for e in later):
            return denied(f"the deploy of {release.id} to {after} failed")
        left = next(
            (e for e in later if e.kind == "rolled-back" or (e.kind in ARRIVALS and e.release != release.id)),
            None,
        )
        soak = parse_duration(environment.soak) if environment.soak else timedelta(0)
        end = left.time if left else context.now
        lived = end - arrived.time
        evidence = {
            "after": after,
            "arrived": arrived.time.isoformat(),
            "seq": arrived.seq,
            "soak": environment.soak,
        }
        if lived >= soak:
            return passed(
                f"in {after} since {arrived.time:%Y-%m-%d %H:%MZ} ({_short(lived)}, soak {environment.soak or 'none'})",
                **evidence,
            )
        if left is not None:
            return denied(
                f"left {after} after {_short(lived)} ({left.kind} at {left.time:%H:%MZ}); soak is {environment.soak}",
                **evidence,
            )
        ready = arrived.time + soak
        return denied(
            f"soak {_short(lived)} of {environment.soak} in {after}, ready at {ready:%H:%MZ}",
            ready=ready.isoformat(),
            **evidence,
        )
