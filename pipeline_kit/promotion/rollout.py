"""Progressive rollouts: canary and blue-green from a CI job, one step at a time, resumable.

A rollout alternates between two slots (`traffic.slots`: blue and green). The release is deployed
to the idle slot (the canary; the deploy command gets PIPELINE_KIT_SLOT and its address), then each
step sets the canary's share of traffic and, when the environment has an `analysis:`, measures the
canary release at that weight. The last step sends everything to the canary, which is then the
live slot. Blue-green is the same with two steps: 0% (the preview, analysed with no traffic), then
100%.

Every step is a ledger entry (kind `rollout`), so the rollout's state survives the job that ran
it: `resume` continues from the step in progress, running its analysis again (never skipping it),
and a second rollout of the environment is refused while one is in progress. Only a rollout that
finished gets the promotion's PASSED VSA; a failed step sends all traffic back to the stable slot
at once (which still runs the previous release), turns the kill switches off, and signs the
rollback of the canary release, which holds it out until a root cause is recorded.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from pipeline_kit.analysis import NO_BASELINE, Analysis, Result, analyse, release_values
from pipeline_kit.config import CanaryStep, EnvironmentConfig, parse_duration
from pipeline_kit.digest import sha256_bytes
from pipeline_kit.errors import EnvironmentFailure, PipelineKitError, Stopped, UsageError, VerificationError
from pipeline_kit.gates import PromotionContext
from pipeline_kit.gates.command import release_environment
from pipeline_kit.ledger import Draft, Entry, Guard, Kind
from pipeline_kit.models import Release
from pipeline_kit.promotion.deciding import Decided, decide, plan, require_line
from pipeline_kit.promotion.deploying import run_deploy
from pipeline_kit.promotion.model import Project, TokenProvider, decision_file, history, now_utc
from pipeline_kit.promotion.records import record_on_forge, sign_hold, sign_vsa
from pipeline_kit.promotion.remediation import trip_kill_switches
from pipeline_kit.promotion.rollout_record import (
    SLOTS,
    Outcome,
    Rollout,
    State,
    abortable,
    current,
    keep_analysis,
    last_move,
    live,
    live_slot,
    refuse_unshown,
    rollout_file,
    still_running,
    unclaimed,
)
from pipeline_kit.promotion.rollout_steps import DEPLOYED, sign_step, signed_steps
from pipeline_kit.promotion.shown import current_release, running_release
from pipeline_kit.stopline import LineStopped
from pipeline_kit.traffic import Split, TrafficProvider, open_traffic
from pipeline_kit.vsa import vsa_bundle

Progress = Callable[[str], None]
ABORT_POLL = 2.0  # seconds between looks for an abort during a timed pause


class Runner:
    """Runs the steps of one rollout (a fresh one, or one resumed from the ledger)."""

    def __init__(
        self,
        project: Project,
        environment: str,
        release: Release,
        decided: Decided | None,  # None: an abort, which signs nothing
        token: TokenProvider,
        on_progress: Progress | None,
        on_result: Callable[[int, Result], None] | None,
    ) -> None:
        self.project = project
        self.environment = environment
        self.release = release
        self.decided = decided
        self.token = token
        self.say = on_progress or (lambda _: None)
        self.on_result = on_result
        self.settings: EnvironmentConfig = project.config.environments[environment]
        assert self.settings.strategy is not None and self.settings.traffic is not None
        self.steps: list[CanaryStep] = self.settings.strategy.steps()
        self.traffic: TrafficProvider = open_traffic(self.settings.traffic, project.workdir)
        self.rollout: Rollout | None = None  # once claimed or resumed: every later entry is guarded by it
        self.since = 0  # the seq of the newest entry moving the rollout on that this job wrote or read

    def follow(self, rollout: Rollout) -> None:
        """Go on with `rollout`: its steps (one, all traffic at once, when nothing ran there), and
        from now on every entry is refused once it is no longer in progress (an abort)."""
        self.rollout = rollout
        self.since = last_move(history(self.project.ledger), rollout)
        if rollout.first:
            self.steps = [CanaryStep(weight=100)]

    # -- recording ---------------------------------------------------------------------------
    def record(self, state: State, step: int, weight: int, **details: Any) -> Entry:
        return self.note("rollout", {"state": state, "step": step, "weight": weight, **details})

    def note(
        self,
        kind: Kind,
        details: dict[str, Any],
        attachments: Sequence[bytes] = (),
        guard: Guard | None = None,
        **fields: Any,
    ) -> Entry:
        """One ledger entry about this rollout's release in its environment, appended only while
        the rollout is still in progress and this job's (else `Stopped`, exit 1); `guard`: another
        condition instead (a start, an abort)."""
        draft = Draft(
            kind=kind,
            environment=self.environment,
            release=self.release.id,
            actor=self.project.actor,
            time=now_utc(),
            details=details,
            **fields,
        )
        if guard is None and self.rollout is not None:
            guard = still_running(self.rollout, self.since)
        entry = self.project.ledger.append(draft, attachments, guard=guard)
        if kind in ("rollout", "rollout-step"):
            self.since = entry.seq
        return entry

    def check(self) -> None:
        """Stop (`Stopped`) if the rollout was aborted: at every step boundary, before traffic moves."""
        assert self.rollout is not None
        still_running(self.rollout, self.since)(history(self.project.ledger))

    def split(self, rollout: Rollout, weight: int) -> Split:
        assert self.settings.traffic is not None
        slots = {str(slot): address for slot, address in self.settings.traffic.slots.items()}
        stable, canary = rollout.stable_slot, rollout.canary_slot
        return Split(stable, slots[stable], canary, slots[canary], weight)

    def env(self) -> dict[str, str]:
        project, release = self.project, self.release
        where = (project.config, project.evidence, project.workdir, (), now_utc(), project.actor)
        context = PromotionContext(release, self.environment, *where)
        assert self.settings.traffic is not None
        return release_environment(context, self.settings.traffic.pass_env)

    # -- the rollout -------------------------------------------------------------------------
    def claim(self) -> Rollout:
        """Record the rollout's start, atomically refused (exit 2) if another started meanwhile.
        The stable release is the one the signed record shows there; with none shown and none
        recorded, nothing runs there: the release takes all the traffic at once."""
        entries = history(self.project.ledger)
        previous, signed_slot = live(self.project, self.environment)
        recorded = live_slot(entries, self.environment)
        stable = signed_slot or recorded  # a VSA signed before 0.2 names no slot: the ledger's
        canary = SLOTS[1] if stable == SLOTS[0] else SLOTS[0]
        first = previous is None and current_release(entries, self.environment) is None
        details = {"stable_slot": stable, "canary_slot": canary, "stable_release": previous, "first": first}
        self.note(
            "rollout",
            {"state": "started", "step": -1, "weight": 0, **details},
            guard=unclaimed(self.environment, recorded),
        )
        rollout = self.reload()
        self.follow(rollout)
        return rollout

    def deploy(self, rollout: Rollout, on_output: Callable[[str], None] | None) -> None:
        """The release to the canary slot, then a signed statement that it was (resume deploys
        again unless that statement is there: a ledger line saying so decides nothing)."""
        split = self.split(rollout, 0)
        where = f"the {rollout.canary_slot} slot ({split.canary})"
        self.say(
            f"deploying {self.release.id} to {where}"
            + ("" if rollout.first else f"; {rollout.stable_slot} keeps the traffic")
        )
        self.check()
        run_deploy(
            self.project,
            self.environment,
            self.release,
            self.project.evidence,
            None,
            on_output,
            details={"slot": rollout.canary_slot},
            extra_env={
                **split.variables(),
                "PIPELINE_KIT_SLOT": rollout.canary_slot,
                "PIPELINE_KIT_SLOT_ADDRESS": split.canary,
            },
            kind="canary-deployed",
        )
        self.sign_step(rollout, DEPLOYED)

    def reload(self) -> Rollout:
        rollout = current(history(self.project.ledger), self.environment)
        assert rollout is not None
        return rollout

    def run_from(self, rollout: Rollout, first: int, step_mode: bool) -> Outcome:
        analyses: list[tuple[int, Analysis]] = []
        for index in range(first, len(self.steps)):
            step = self.steps[index]
            self.check()
            try:  # the org's line, before traffic moves: stopped, the rollout pauses where it stands
                require_line(self.project, f"step {index + 1}/{len(self.steps)} in {self.environment}")
            except LineStopped as stopped:
                here = self.reload()
                self.record("paused", here.step, here.weight, reason=stopped.message)
                return Outcome(self.reload(), "stopped", stopped.message, analyses)
            what = self.traffic.apply(self.split(rollout, step.weight), self.env())
            try:
                self.record("step", index, step.weight)
            except Stopped:  # ended by another job while this one moved traffic: its split again
                now = current(history(self.project.ledger), self.environment)
                if now is not None and now.started.seq == rollout.started.seq and not now.active:
                    self.traffic.apply(self.split(rollout, 100 if now.state == "finished" else 0), self.env())
                raise
            self.say(f"step {index + 1}/{len(self.steps)}: {what}")
            if self.settings.analysis is not None:
                analysis = self.measure(rollout, index)
                analyses.append((index, analysis))
                if not analysis.passed:
                    return self.fail(rollout, index, analysis, analyses)
            if step.pause == "manual":  # the step passed; a person says when the next one starts
                self.sign_step(rollout, index)
                self.record("paused", index, step.weight)
                resume = f"pipeline-kit rollout resume --env {self.environment}"
                reason = f"at step {index + 1} ({step.weight}%), waiting for {resume}"
                return Outcome(self.reload(), "paused", reason, analyses)
            if step.pause is not None:  # part of the step: killed during it, the step runs again
                self.say(f"  pause {step.pause}")
                self.wait(parse_duration(step.pause).total_seconds())
            self.sign_step(rollout, index)
            if step_mode and index < len(self.steps) - 1:
                self.record("paused", index, step.weight, reason="step mode: one step per call")
                done = f"step {index + 1} of {len(self.steps)} done; the next call goes on"
                return Outcome(self.reload(), "stepped", done, analyses)
        return self.finish(rollout, analyses)

    def sign_step(self, rollout: Rollout, index: int) -> None:
        """Step `index` passed here (see `rollout_steps`): signed, then attached to the ledger."""
        weight = self.steps[index].weight if index != DEPLOYED else 0
        bundle = sign_step(self.project, self.release, rollout, index, weight, len(self.steps), self.token)
        self.note(
            "rollout-step", {"step": index, "rollout": rollout.started.seq, "signed": sha256_bytes(bundle)}, [bundle]
        )

    def signed(self, rollout: Rollout, entries: Sequence[Entry] | None = None) -> set[int]:
        """The steps of this rollout with a signed pass (DEPLOYED: its deploy)."""
        entries = history(self.project.ledger) if entries is None else entries
        return signed_steps(self.project, self.release, rollout, len(self.steps), entries)

    def passed_steps(self, rollout: Rollout) -> int:
        """How many steps of this rollout, from the first, have a signed pass."""
        passed, count = self.signed(rollout), 0
        while count in passed:
            count += 1
        return count

    def wait(self, seconds: float) -> None:
        """A timed pause, watching for an abort (a few seconds apart: each look reads the ledger)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, ABORT_POLL))
            self.check()

    def measure(self, rollout: Rollout, index: int) -> Analysis:
        from pipeline_kit.metrics import open_provider

        settings = self.settings.analysis
        assert settings is not None
        provider = open_provider(self.project.config, settings.provider, os.environ)
        values = {**release_values(self.release, self.environment, ""), "slot": rollout.canary_slot}

        def report(tick: int, result: Result) -> None:
            if self.on_result is not None:
                self.on_result(tick, result)

        baseline, no_baseline = self.baseline(rollout, values)
        analysis = analyse(provider, settings, values, baseline=baseline, no_baseline=no_baseline, on_result=report)
        record = self.keep(index, analysis)
        details = {"verdict": analysis.verdict, "step": index, "counts": analysis.counts(), "analysis": record}
        self.note("analysed", details, reason=analysis.reason)
        return analysis

    def baseline(self, rollout: Rollout, values: dict[str, str]) -> tuple[dict[str, str] | None, str]:
        """The stable side's placeholder values, shown from signed evidence (its release verifies
        and a signed VSA shows it in this environment), or None and why not."""
        if not rollout.stable_release:
            return None, NO_BASELINE
        project, entries = self.project, history(self.project.ledger)
        shown = running_release(project, self.environment, entries, rollout.stable_release, beside=rollout.release)
        if shown.evidence is None:
            return None, f"the stable release cannot be shown: {shown.why}"
        stable = shown.evidence.load_release()
        return {
            **values,
            "release": stable.id,
            "slot": rollout.stable_slot,
            "digest": f"sha256:{stable.subjects[0].sha256}",
        }, ""

    def keep(self, index: int, analysis: Analysis) -> str:
        """Add a step's analysis to the rollout record in the evidence dir; returns its digest."""
        weight = self.steps[index].weight
        return keep_analysis(self.project.evidence, self.release, self.environment, index, weight, analysis, self.say)

    def finish(self, rollout: Rollout, analyses: list[tuple[int, Analysis]]) -> Outcome:
        project, environment, decided = self.project, self.environment, self.decided
        assert decided is not None, "a rollout finishes only on a decision taken in this process"
        decision = decided.decision
        done = self.passed_steps(rollout)
        if done < len(self.steps):  # never a PASSED VSA for a step nobody signed as passed
            raise VerificationError(
                f"step {done + 1} of the rollout in {environment} has no signed pass: resume goes on from it"
            )
        record, _ = project.evidence.read_checked(rollout_file(environment))  # bounded: a planted file is no record
        analysis = None
        if self.settings.analysis is not None and record is not None:
            analysis = {"name": rollout_file(environment), "sha256": sha256_bytes(record)}
        bundle = sign_vsa(project, decided, self.token, after_analysis=analysis, late=True, slot=rollout.canary_slot)
        # the decision the VSA was signed on (taken in this process), beside it
        written = {decision_file(environment): decision.to_json(), vsa_bundle(environment): bundle}
        # The release arrives with this one entry, its VSA attached; refused if an abort came first
        # (then the VSA is kept nowhere), so an abort wins at any moment before it.
        finished = {"state": "finished", "step": len(self.steps) - 1, "weight": 100, "canary_slot": rollout.canary_slot}
        self.note("rollout", {**finished, "vsa": sha256_bytes(bundle)}, [bundle], subjects=decision.subjects)
        project.evidence.record_many(self.release, written)
        record_on_forge(project, environment, self.release, decision, written, deployed=True)
        self.say(f"rollout finished: {rollout.canary_slot} is live with {self.release.id}")
        return Outcome(self.reload(), "finished", f"{len(self.steps)} step(s), {rollout.canary_slot} is live", analyses)

    def fail(self, rollout: Rollout, index: int, analysis: Analysis, analyses: list[tuple[int, Analysis]]) -> Outcome:
        """Traffic back to stable at once, then the kill switches, then the signed rollback."""
        reason = f"analysis {analysis.verdict} at step {index + 1}: {analysis.reason}"
        done: list[str] = []
        failures: list[str] = []
        if rollout.first:  # nothing else ever ran there: an empty slot is no place for the traffic
            done.append(f"traffic stays with {self.release.id}: nothing ran in {self.environment} before it")
        else:
            try:
                done.append(self.traffic.apply(self.split(rollout, 0), self.env()))
            except PipelineKitError as exc:
                failures.append(f"traffic back to stable: {exc.message}")
        weight = 0 if not failures and not rollout.first else self.steps[index].weight
        self.record("failed", index, weight, reason=reason)
        project = self.project
        tripped, unswitched = trip_kill_switches(project, self.environment, reason)
        done += tripped
        failures += unswitched
        try:
            entries = history(project.ledger)
            held = sign_hold(
                project, self.environment, self.release.subjects, rollout.stable_release, entries, reason, self.token
            )
            project.ledger.append(
                Draft(
                    kind="rolled-back",
                    environment=self.environment,
                    release=rollout.stable_release,
                    actor=project.actor,
                    time=now_utc(),
                    reason=reason,
                    details={
                        "from": self.release.id,
                        "to": rollout.stable_release,
                        "hold": sha256_bytes(held),
                        "slot": rollout.stable_slot,
                    },
                ),
                [held],
            )
            done.append(f"{self.release.id} held out of {self.environment} (signed rollback)")
        except PipelineKitError as exc:
            failures.append(f"signed rollback: {exc.message}")
        if failures:
            raise EnvironmentFailure(
                f"the rollout of {self.release.id} in {self.environment} failed ({reason}), and so did: "
                + "; ".join(failures)
            )
        return Outcome(self.reload(), "failed", reason, analyses, tuple(done))


def claim(
    project: Project,
    decided: Decided,
    token: TokenProvider,
    *,
    on_progress: Progress | None = None,
    on_result: Callable[[int, Result], None] | None = None,
) -> Runner:
    """Start a rollout of the decided release: its start recorded, refused (exit 2) when another
    rollout of the environment started first. Nothing is deployed yet (`start` does)."""
    runner = Runner(project, decided.environment, decided.release, decided, token, on_progress, on_result)
    runner.claim()
    return runner


def start(runner: Runner, *, step_mode: bool = False, on_output: Callable[[str], None] | None = None) -> Outcome:
    """The claimed rollout from its canary deploy to its last step (or its first pause)."""
    assert runner.rollout is not None
    runner.deploy(runner.rollout, on_output)
    return runner.run_from(runner.rollout, 0, step_mode)


def resume(
    project: Project,
    environment: str,
    token: TokenProvider,
    *,
    step_mode: bool = False,
    on_output: Callable[[str], None] | None = None,
    on_progress: Progress | None = None,
    on_result: Callable[[int, Result], None] | None = None,
) -> Outcome:
    """Continue the rollout in progress, judged again here (evidence and gates) first: its
    release deployed again unless a signed statement says it was, then from the first step
    without a signed pass (past a manual pause or a --step stop, the next one; else the step that
    was in progress, from its start: its weight set, its analysis and pause run again, never half
    judged). The ledger's word on a deploy or a step decides nothing."""
    rollout = status(project, environment)
    if rollout is None or not rollout.active:
        raise UsageError(f"no rollout in progress in {environment}")
    decided = _judged(project, environment, rollout)
    runner = Runner(project, environment, decided.release, decided, token, on_progress, on_result)
    refuse_unshown(rollout, *live(project, environment))
    runner.follow(rollout)
    if DEPLOYED not in runner.signed(rollout):
        runner.deploy(rollout, on_output)
    first = runner.passed_steps(rollout)
    if first >= len(runner.steps):
        return runner.finish(rollout, [])
    return runner.run_from(rollout, first, step_mode)


def abort(project: Project, environment: str, reason: str, on_progress: Progress | None = None) -> Outcome:
    """All traffic back to the stable slot; the rollout ends (no hold: nothing was judged bad).
    The abort is recorded first, only while the rollout is in progress (one guarded entry, so of
    an abort and the job's finish one wins), then the traffic moves: the job running the rollout
    stops at its next step boundary (or during a pause) and signs nothing more. Aborting an
    aborted rollout sends its traffic back again (a traffic change that failed the first time)."""
    rollout = status(project, environment)
    if rollout is None or (not rollout.active and rollout.state != "aborted"):
        raise UsageError(f"no rollout in progress in {environment}")
    # no gate is judged and nothing signed, so nothing can slow an abort down
    release = _rollout_release(project, environment, rollout)
    try:  # the live slot as signed (without a policy or a trust root here: the line's word)
        _, slot = live(project, environment) if project.trust.policy is not None else (None, None)
    except PipelineKitError:
        slot = None
    if slot is not None and rollout.stable_slot != slot:  # the line contradicts the signed record
        other = SLOTS[1] if slot == SLOTS[0] else SLOTS[0]
        rollout = dataclasses.replace(rollout, stable_slot=slot, canary_slot=other)
    runner = Runner(project, environment, release, None, lambda: ("", ""), on_progress, None)
    runner.follow(rollout)
    if rollout.active:
        aborted = {"state": "aborted", "step": rollout.step, "weight": 0, "reason": reason}
        runner.note("rollout", aborted, guard=abortable(rollout), reason=reason)
    if rollout.first:
        what = f"traffic stays with {release.id}: nothing else ran in {environment}"
    else:
        what = runner.traffic.apply(runner.split(rollout, 0), runner.env())
    return Outcome(runner.reload(), "aborted", f"{what}; {reason}")


def status(project: Project, environment: str) -> Rollout | None:
    return current(history(project.ledger), environment)


def _rollout_release(project: Project, environment: str, rollout: Rollout) -> Release:
    """The release in the evidence dir, which must be the rollout's."""
    release = project.evidence.load_release()
    if release.id != rollout.release:
        raise UsageError(
            f"the evidence here is release {release.id}, the rollout in {environment} is {rollout.release}",
            hint="download the rollout's evidence (its build's artifact) into the evidence dir",
        )
    return release


def _judged(project: Project, environment: str, rollout: Rollout) -> Decided:
    """The rollout's release and a decision on it taken now, in this process: the evidence is
    verified and every gate judged again (a decision file or a ledger line decides nothing); the
    release must pass now to go on."""
    _rollout_release(project, environment, rollout)
    result = plan(project, environment)
    release = result.release
    if not result.passed:
        blocking = "; ".join(f"{r.gate}: {r.reason}" for r in result.blocking())
        raise VerificationError(f"{release.id} would be denied in {environment} now, so its rollout stops: {blocking}")
    return decide(project, result, "passed", f"rollout of {release.id}")
