"""Multi-service releases: a release plan applied as a saga.

A plan (`release_plan`) names the services and the order they depend on. `apply` judges every
step first (a step denied now starts nothing), then promotes them in that order, each a normal
promotion with its own gates, decision, VSA, deploy and analysis. When a step fails, every step
that completed is compensated in reverse order: its `compensate:` command, or else that service's
signed compensation (a rollback that holds nothing: the service did nothing wrong). The saga's
progress is kept in the plan's own ledger (kind `saga`, its start guarded: one run at a time), so
a killed `apply` resumes without re-running a completed step or a done compensation.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeline_kit._internal.fs import exclusive
from pipeline_kit._internal.proc import run_streaming
from pipeline_kit.errors import EnvironmentFailure, PipelineKitError, UsageError, VerificationError
from pipeline_kit.gates.stop_the_line import StopTheLineGate
from pipeline_kit.ledger import Draft, Entry, Guard
from pipeline_kit.promotion.arriving import promote
from pipeline_kit.promotion.deciding import plan, require_line
from pipeline_kit.promotion.model import KIT_URI, Project, TokenProvider, history, now_utc
from pipeline_kit.promotion.rolling_back import rollback
from pipeline_kit.promotion.shown import signed_timeline
from pipeline_kit.release_plan import LoadedPlan, PlanStep
from pipeline_kit.stopline import LineStopped

# The saga's signed summary: which releases of which services went out together, and how it ended.
SUMMARY_PREDICATE = f"{KIT_URI}/release-plan/v1"


def summary_bundle(environment: str) -> str:
    """Where a plan's signed summary for `environment` is kept, beside the plan."""
    return f".pipeline-kit/release-plan.{environment}.sigstore.json"


State = Literal["started", "step-done", "step-failed", "compensated", "compensation-failed", "finished", "failed"]
ServiceName = str


@dataclass
class Saga:
    """A saga's state, from the plan's ledger: the run in progress (or the newest) of this plan
    to this environment."""

    environment: str
    plan: str
    started: Entry | None = None
    done: list[ServiceName] = field(default_factory=list)  # completed steps, in order
    releases: dict[ServiceName, str] = field(default_factory=dict)  # what each completed step promoted
    failed: ServiceName | None = None
    compensated: list[ServiceName] = field(default_factory=list)
    outcome: State | None = None  # finished or failed once over

    @property
    def open(self) -> bool:
        return self.started is not None and self.outcome is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "plan": self.plan,
            "started": self.started.time.isoformat() if self.started else None,
            "done": self.done,
            "releases": self.releases,
            "failed": self.failed,
            "compensated": self.compensated,
            "outcome": self.outcome,
        }


def saga_state(entries: Sequence[Entry], environment: str, digest: str, services: Collection[str]) -> Saga:
    """The newest run of the plan `digest` to `environment`, as its ledger lines record it (a line
    naming a service the plan does not have is no step of it). The ledger only: `Applier.state`
    keeps what signed evidence bears out."""
    saga = Saga(environment, digest)
    for entry in entries:
        if entry.kind != "saga" or entry.environment != environment or entry.details.get("plan") != digest:
            continue
        state, service = entry.details.get("state"), entry.details.get("service")
        if state != "started" and service is not None and service not in services:
            continue
        if state == "started":
            saga = Saga(environment, digest, started=entry)
        elif state == "step-done" and isinstance(service, str) and isinstance(entry.release, str):
            saga.done.append(service)
            saga.releases[service] = entry.release
        elif state == "step-failed":
            saga.failed = str(service)
        elif state == "compensated":
            saga.compensated.append(str(service))
        elif state in ("finished", "failed"):
            saga.outcome = state
    return saga


@dataclass(frozen=True)
class Outcome:
    saga: Saga
    verdict: Literal["finished", "failed"]
    reason: str
    steps: list[str]  # what happened, in words, in order


ProjectFor = Callable[[Path], Project]


class Applier:
    def __init__(
        self,
        loaded: LoadedPlan,
        environment: str,
        project_for: ProjectFor,
        token: TokenProvider,
        actor: str,
        say: Callable[[str], None],
    ) -> None:
        self.loaded = loaded
        self.environment = environment
        self.project_for = project_for
        self.token = token
        self.actor = actor
        self.say = say
        self.ledger = loaded.ledger()
        self.steps = {step.service: step for step in loaded.plan.steps}

    def record(
        self,
        state: State,
        service: str | None = None,
        release: str | None = None,
        guard: Guard | None = None,
        **details: Any,
    ) -> None:
        self.ledger.append(
            Draft(
                kind="saga",
                environment=self.environment,
                release=release,
                actor=self.actor,
                time=now_utc(),
                reason=details.pop("reason", None),
                details={"state": state, "plan": self.loaded.digest, "service": service, **details},
            ),
            guard=guard,
        )

    def begin(self) -> None:
        """Record the saga's start, refused (exit 2) if another run of this plan to this
        environment started first: two applies of one plan never both run."""

        def unopened(entries: Sequence[Entry]) -> None:
            if saga_state(entries, self.environment, self.loaded.digest, self.steps).open:
                raise UsageError(f"the release plan to {self.environment} is being applied by another job")

        self.record("started", guard=unopened, steps=[s.service for s in self.loaded.plan.order()])

    def releases(self) -> dict[ServiceName, str]:
        """The release each step would promote now: its project's evidence."""
        return {
            step.service: self.project_for(self.loaded.directory(step)).evidence.load_release().id
            for step in self.loaded.plan.steps
        }

    def refuse_denied(self) -> None:
        """Every step judged before any starts: a step its gates deny now stops the plan before a
        service is touched (exit 1, naming it). What a step's own promotion alone can show (its
        analysis, a rollout) is judged when it runs."""
        denied = [(service, result) for service, result in self.plan() if not result.passed]
        if denied:
            service, result = denied[0]
            first = result.blocking()[0]
            path = self.loaded.plan.steps[[s.service for s in self.loaded.plan.steps].index(service)].path
            raise VerificationError(
                f"{service} would be denied in {self.environment} by {first.gate}: {first.reason}; nothing was started",
                hint=f"its commands run in its directory: pipeline-kit -C {path} ...",
            )

    def state(self) -> Saga:
        return saga_state(history(self.ledger), self.environment, self.loaded.digest, self.steps)

    def arrived(self, saga: Saga) -> set[ServiceName]:
        """The steps done that signed evidence bears out: the service's signed record shows the
        release the step promoted there, not taken out since. `apply` skips only these (a line
        alone skips no step)."""
        plan = self.releases()  # the release each step promotes: a line naming another skips nothing
        return {s for s in saga.done if saga.releases[s] == plan[s] and self.shown(s, plan[s]) == "arrived"}

    def shown(self, service: ServiceName, release: str) -> str:
        """What `service`'s signed record shows of `release` here: arrived (a signed PASSED VSA,
        not taken out since), taken out (a signed rollback or compensation since), or unknown."""
        project = self.project_for(self.loaded.directory(self.steps[service]))
        if project.trust.policy is None:
            return "unknown"
        timeline = signed_timeline(project, self.environment, history(project.ledger))
        arrival = timeline.arrival(release)
        if arrival is None or not arrival.passed:
            return "unknown"
        return "taken out" if timeline.moved_since(arrival) else "arrived"

    def apply(self) -> Outcome:
        """Run the plan: every step judged first, then promoted in order; a failure compensates
        every completed step, newest first. Killed anywhere, applying again goes on from there: a
        step done is not run again, a compensation done is not repeated, a finished run of these
        releases is not started again (its summary signed if it was not). One apply of a plan to
        an environment at a time on this machine (a lock the kernel drops when the job dies): a
        second exits 2 instead of running the same steps beside the first."""
        lock = self.loaded.root / ".pipeline-kit" / f"release-plan.{self.environment}.lock"
        with exclusive(lock, f"{lock}: the release plan is being applied by another job here"):
            return self._apply()

    def _apply(self) -> Outcome:
        saga = self.state()
        log: list[str] = []
        # finished with these releases (each step's own, shown arrived by its service's signed record)
        if saga.outcome == "finished" and len(self.arrived(saga)) == len(self.steps):
            return Outcome(saga, "finished", "these releases went out with this plan already", [self.sign_summary()])
        if not saga.open:
            self.refuse_denied()
            self.begin()
            saga = self.state()
        elif saga.failed is None:
            log.append(f"resuming: {', '.join(saga.done) or 'no step'} done")
        if saga.failed is None:
            log += self.run_steps(saga)
            saga = self.state()
        if saga.failed is None:
            self.record("finished")
            log.append(self.sign_summary())
            return Outcome(self.state(), "finished", f"{len(saga.done)} step(s) promoted", log)
        lines, failed = self.compensate(saga)
        if failed:  # the saga stays open: applying again retries what is left
            raise EnvironmentFailure(
                f"{saga.failed} failed, and the compensation of {', '.join(failed)} failed too: " + "; ".join(lines),
                hint=f"fix it, then apply again: the compensation of {', '.join(failed)} is retried",
            )
        log += lines
        self.record("failed", reason=f"{saga.failed} failed")
        log.append(self.sign_summary())
        return Outcome(self.state(), "failed", f"{saga.failed} failed; completed steps compensated", log)

    def run_steps(self, saga: Saga) -> list[str]:
        """The steps not yet done, in waves: every step whose needs are done runs now, at most
        `parallel` at once; after a wave with a failure no new step starts (the wave's others
        finish, and are compensated with the rest)."""
        from concurrent.futures import ThreadPoolExecutor

        log: list[str] = []
        done = self.arrived(saga)
        pending = [step for step in self.loaded.plan.order() if step.service not in done]
        while pending:
            wave = [step for step in pending if set(step.needs) <= done]
            for step in wave:  # the org's line first: stopped, the plan stays open (nothing compensated)
                require_line(self.project_for(self.loaded.directory(step)), f"{step.service}: the release plan step")
            with ThreadPoolExecutor(max_workers=max(1, min(self.loaded.plan.parallel, len(wave)))) as pool:
                problems = list(pool.map(self.promote_step, wave))
            failed = False
            for step, problem in zip(wave, problems, strict=True):
                if problem is None:
                    done.add(step.service)
                    log.append(f"{step.service}: promoted")
                else:
                    self.record("step-failed", step.service, reason=problem)
                    log.append(f"{step.service}: failed: {problem}")
                    failed = True
            if failed:
                break
            pending = [step for step in pending if step.service not in done]
        return log

    def sign_summary(self) -> str:
        """One signed statement about every release the saga promoted (its subjects), with each
        step's state and the outcome: proof of which versions went out together, or came back."""
        from pipeline_kit._internal.fs import atomic_write
        from pipeline_kit.evidence import EvidenceDir
        from pipeline_kit.models import Subject
        from pipeline_kit.signing import Signable, sign_all, statement_json

        saga = self.state()
        subjects: list[Subject] = []
        steps = []
        for step in self.loaded.plan.order():
            release_id = saga.releases.get(step.service)
            state = "compensated" if step.service in saga.compensated else "promoted" if release_id else "not promoted"
            steps.append({"service": step.service, "release": release_id, "state": state})
            if release_id:
                archive = EvidenceDir(self.project_for(self.loaded.directory(step)).evidence.archive(release_id))
                subjects.extend(
                    Subject(name=f"{step.service}/{s.name}", digest=s.digest) for s in archive.load_release().subjects
                )
        predicate = {
            "plan": {"uri": self.loaded.path.name, "digest": {"sha256": self.loaded.digest}},
            "environment": self.environment,
            "steps": steps,
            "failed": saga.failed,
            "outcome": saga.outcome or "finished",
            "time": now_utc().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if not subjects:
            return "no release was promoted: nothing to sign"
        raw, source = self.token()
        first = self.project_for(self.loaded.directory(self.loaded.plan.order()[0]))
        name = summary_bundle(self.environment)
        statement = statement_json(tuple(subjects), SUMMARY_PREDICATE, predicate)
        signed = sign_all(first.trust.load(), raw, source, [Signable(name, statement=statement)])
        atomic_write(self.loaded.root / name, signed.files[name])
        return f"signed summary: {name} ({len(subjects)} subject(s))"

    def promote_step(self, step: PlanStep) -> str | None:
        """Promote one service; None when it completed, else why not (recorded by the caller)."""
        self.say(f"{step.service}: promoting to {self.environment}")
        try:
            project = self.project_for(self.loaded.directory(step))
            result = promote(
                project,
                self.environment,
                reason=f"release plan {self.loaded.digest[:12]}",
                break_glass=False,
                deploy=None,
                token=self.token,
            )
        except PipelineKitError as exc:
            return exc.message
        if result.decision.verdict == "denied":
            blocking = result.plan.blocking()
            if any(r.gate == StopTheLineGate.name for r in blocking):  # stopped meanwhile: not a failure
                raise LineStopped(f"{step.service}: the release plan step was refused: {blocking[0].reason}")
            return f"denied by {blocking[0].gate}: {blocking[0].reason}" if blocking else "denied"
        if result.analysis is not None and not result.analysis.passed:
            return f"analysis {result.analysis.verdict}: {result.analysis.reason}"
        if result.rollout is not None and result.rollout.verdict == "stopped":  # paused by the line: not a failure
            raise LineStopped(f"{step.service}: {result.rollout.reason}")
        if result.rollout is not None and result.rollout.verdict != "finished":
            return f"rollout {result.rollout.verdict}: {result.rollout.reason}"
        self.record("step-done", step.service, result.plan.release.id)
        return None

    def compensate(self, saga: Saga) -> tuple[list[str], list[ServiceName]]:
        """Every completed step, newest first, once each (a resumed run skips the done ones): what
        happened, and the services whose compensation failed."""
        lines, failed = [], []
        for service in reversed(saga.done):
            done = self.compensate_one(saga, service)
            if done is not None:
                lines.append(done[0])
                if not done[1]:
                    failed.append(service)
        return lines, failed

    def compensate_one(self, saga: Saga, service: ServiceName) -> tuple[str, bool] | None:
        """Compensate one completed step, recording it: (what happened, whether it worked); None
        when there is nothing to do (never completed, or compensated already)."""
        if service not in saga.done:
            return None
        # a compensation by signed rollback is done when the signed record shows the release taken
        # out; one by command leaves nothing signed, so its line is taken at its word
        if service in saga.compensated and (
            self.steps[service].compensate or self.shown(service, saga.releases[service]) == "taken out"
        ):
            return None
        reason = f"release plan {self.loaded.digest[:12]}: {saga.failed} failed"
        try:
            what = self.compensate_step(self.steps[service], reason)
        except PipelineKitError as exc:
            self.record("compensation-failed", service, reason=exc.message)
            return f"{service}: compensation failed: {exc.message}", False
        self.record("compensated", service, saga.releases.get(service), reason=what)
        saga.compensated.append(service)
        return f"{service}: {what}", True

    # -- one job per step: the plan compiled into the CI platform's DAG ---------------------------
    # Each job does one part and records it in the plan's ledger (shared: the git backend); the
    # CI platform orders the jobs by the plan's needs and runs the compensations on failure.

    def start(self) -> str:
        saga = self.state()
        if saga.open:
            return f"resuming the release plan to {self.environment}: {', '.join(saga.done) or 'no step'} done"
        self.begin()
        return f"release plan to {self.environment} started"

    def _open(self) -> Saga:
        saga = self.state()
        if not saga.open:
            raise UsageError(
                f"no release plan in progress to {self.environment}", hint="the first job runs `release start`"
            )
        return saga

    def step(self, service: ServiceName) -> Outcome:
        """Promote one step of the open saga; a step done already is not run again."""
        saga = self._open()
        step = self._step(service)
        if service in saga.done:
            return Outcome(saga, "finished", f"{service}: done already", [])
        if saga.failed is not None:
            return Outcome(saga, "failed", f"{service}: not run: {saga.failed} failed", [])
        missing = [need for need in step.needs if need not in saga.done]
        if missing:
            raise UsageError(f"{service}: needs {', '.join(missing)} first")
        require_line(self.project_for(self.loaded.directory(step)), f"{service}: the release plan step")
        problem = self.promote_step(step)
        if problem is not None:
            self.record("step-failed", service, reason=problem)
            return Outcome(self.state(), "failed", f"{service}: {problem}", [])
        return Outcome(self.state(), "finished", f"{service}: promoted", [])

    def compensate_service(self, service: ServiceName) -> Outcome:
        """Compensate one step once every step that needs it has been (newest first, as a DAG)."""
        saga = self._open()
        self._step(service)
        missing = [s.service for s in self.loaded.plan.order() if s.service not in saga.done]
        if saga.failed is None and not missing:
            return Outcome(saga, "finished", f"{service}: nothing to compensate: every step was promoted", [])
        if saga.failed is None:  # every step job has ended (the pipeline's needs): one died unrecorded
            self.record("step-failed", missing[0], reason="its job ended without recording an outcome")
            saga = self.state()
        waiting = [
            s.service
            for s in self.loaded.plan.steps
            if service in s.needs and s.service in saga.done and s.service not in saga.compensated
        ]
        if waiting:
            raise UsageError(f"{service}: compensate {', '.join(waiting)} first (they need it)")
        done = self.compensate_one(saga, service)
        line, worked = done or (f"{service}: nothing to compensate", True)
        if not worked:  # exit 3: the service may run the release that failed beside it; retry the job
            raise EnvironmentFailure(line, hint=f"fix it, then run `release compensate {service}` again")
        return Outcome(self.state(), "finished", line, [])

    def finish(self) -> Outcome:
        """Close the saga: finished when every step was promoted, else failed (after the
        compensation jobs); sign the summary either way."""
        saga = self._open()
        missing = [s.service for s in self.loaded.plan.order() if s.service not in saga.done]
        if not missing:
            self.record("finished")
            return Outcome(self.state(), "finished", f"{len(saga.done)} step(s) promoted", [self.sign_summary()])
        left = [service for service in saga.done if service not in saga.compensated]
        reason = f"{saga.failed or missing[0]} failed" + (f"; not compensated: {', '.join(left)}" if left else "")
        self.record("failed", reason=reason)
        return Outcome(self.state(), "failed", reason, [self.sign_summary()])

    def _step(self, service: ServiceName) -> PlanStep:
        if service not in self.steps:
            raise UsageError(f"the plan has no step {service!r} (steps: {', '.join(self.steps)})")
        return self.steps[service]

    def compensate_step(self, step: PlanStep, reason: str) -> str:
        directory = self.loaded.directory(step)
        project = self.project_for(directory)
        if step.compensate:
            from pipeline_kit.gates.command import release_environment
            from pipeline_kit.gates.interface import PromotionContext

            release = project.evidence.load_release()
            context = PromotionContext(
                release, self.environment, project.config, project.evidence, directory, (), now_utc(), self.actor
            )
            env = release_environment(context, project.config.environments[self.environment].pass_env)
            outcome = run_streaming(step.compensate, cwd=directory, env=env, on_line=None)
            if outcome.returncode != 0:
                raise EnvironmentFailure(f"compensate command exited with code {outcome.returncode}")
            return "compensated by its command"
        # the release this step promoted is the one to take out: the step's evidence names it,
        # and rollback verifies it (the signed record may not show it yet in a job of its own)
        promoted = project.evidence.load_release().id
        current, target, _ = rollback(
            project,
            self.environment,
            to=None,
            reason=reason,
            deploy=None,
            token=self.token,
            named=promoted,
            compensation=True,
        )
        return f"rolled back from {current} to {target} (a compensation: no hold)"

    def rollback(self) -> Outcome:
        """Compensate a finished saga by hand, newest step first."""
        saga = self.state()
        if saga.outcome != "finished":
            raise UsageError(f"no finished release plan in {self.environment} to roll back")
        saga.failed = "rollback by hand"
        log, failed = self.compensate(saga)
        if failed:
            raise EnvironmentFailure(f"the compensation of {', '.join(failed)} failed: " + "; ".join(log))
        self.record("failed", reason="rolled back by hand")
        return Outcome(self.state(), "failed", "compensated by hand", log)

    def plan(self) -> list[tuple[str, Any]]:
        """Every step's plan, in order, changing nothing."""
        order = self.loaded.plan.order()
        return [(step.service, plan(self.project_for(self.loaded.directory(step)), self.environment)) for step in order]
