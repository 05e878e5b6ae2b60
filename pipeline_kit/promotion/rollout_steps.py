"""A rollout's signed steps: a statement, signed as the promotion's VSA is, that one step of one
rollout passed (its weight set, its analysis passed) or that its release was deployed to the
canary slot. `resume` goes on only from these, an abort is refused once the last one is in the
ledger, and the rollout's PASSED VSA needs every one: a ledger line decides nothing."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline_kit.evidence import PROMOTIONS_DIR
from pipeline_kit.ledger import Entry
from pipeline_kit.models import Release
from pipeline_kit.promotion.model import Project, TokenProvider, resource_uri
from pipeline_kit.promotion.rollout_record import Rollout
from pipeline_kit.vsa import Candidate, verified

STEP_PREDICATE = "https://pipeline-kit.dev/rollout-step/v1"  # a signed pass of one rollout step
DEPLOYED = -1  # the "step" saying the release was deployed to the canary slot


def step_bundle(environment: str, index: int) -> str:
    """Where the signed pass of a rollout's step `index` lives in the evidence dir."""
    return f"{PROMOTIONS_DIR}/{environment}.step-{index}.sigstore.json"


def sign_step(
    project: Project, release: Release, rollout: Rollout, index: int, weight: int, steps: int, token: TokenProvider
) -> bytes:
    """Step `index` of `rollout` (named by the ledger seq that started it, of `steps` steps)
    passed at `weight`, signed, and kept in the evidence dir; returns the bundle."""
    from pipeline_kit.signing import Signable, sign_all, statement_json

    name = step_bundle(rollout.environment, index)
    predicate = {
        "resourceUri": resource_uri(project.config, rollout.environment),
        "rollout": rollout.started.seq,
        "step": index,
        "weight": weight,
        "steps": steps,
    }
    raw, source = token()
    statement = statement_json(release.subjects, STEP_PREDICATE, predicate)
    bundle = sign_all(project.trust.load(), raw, source, [Signable(name, statement=statement)]).files[name]
    project.evidence.record_many(release, {name: bundle})
    return bundle


def signed_steps(
    project: Project, release: Release, rollout: Rollout, steps: int, entries: Sequence[Entry]
) -> set[int]:
    """The steps of `rollout` whose signed pass the ledger attaches and that verify for the
    identity policy (DEPLOYED: its canary deploy)."""
    assert project.trust.policy is not None
    uri = resource_uri(project.config, rollout.environment)
    candidates = [
        Candidate(f"ledger seq {e.seq}", data)
        for e in entries
        if e.kind == "rollout-step"
        and e.environment == rollout.environment
        and e.release == release.id
        and isinstance(e.details.get("signed"), str)
        and (data := project.ledger.attachment(e.details["signed"])) is not None
    ]
    subjects = {(s.name, s.sha256) for s in release.subjects}
    passed: set[int] = set()
    for signed in verified(candidates, project.trust.policy, project.trust.load(), STEP_PREDICATE):
        predicate = signed.predicate
        ours = signed.subjects == subjects and predicate.get("resourceUri") == uri
        if ours and predicate.get("rollout") == rollout.started.seq and predicate.get("steps") == steps:
            step = predicate.get("step")
            if isinstance(step, int) and not isinstance(step, bool):
                passed.add(step)
    return passed
