"""Remediation after a failed analysis: the kill switches first (fastest), then the signed
rollback; and a kill switch turned off or back on by hand."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_kit.config import Config
from pipeline_kit.errors import EnvironmentFailure, PipelineKitError, first_line
from pipeline_kit.ledger import Draft, Ledger
from pipeline_kit.models import Release
from pipeline_kit.promotion.model import Project, TokenProvider, check_environment, now_utc
from pipeline_kit.promotion.rolling_back import rollback

if TYPE_CHECKING:
    from pipeline_kit.analysis import Analysis


def after_failure(
    project: Project,
    environment: str,
    release: Release,
    analysis: Analysis,
    token: TokenProvider,
    *,
    roll_back: bool = True,
) -> tuple[str, ...]:
    """A failed analysis: the kill switches off first (fastest), then the signed rollback (not
    `roll_back`, where no user command may run: signed and recorded, its deploy left to a job of
    the workflow's). A step that fails is recorded and raised as an EnvironmentFailure (exit 3)
    after the others ran."""
    settings = project.config.environments[environment].on_failure
    reason = f"analysis {analysis.verdict}: {analysis.reason}"
    done, failures = trip_kill_switches(project, environment, reason)
    if settings.rollback:
        try:
            current, target, _ = rollback(
                project,
                environment,
                to=None,
                reason=reason,
                deploy=None,
                token=token,
                from_release=release,
                deploy_elsewhere=not roll_back,
            )
            left = "" if roll_back else f" (signed; deploy {target} from a job of yours)"
            done.append(f"rolled {environment} back from {current} to {target}{left}")
        except PipelineKitError as exc:
            failures.append(f"rollback: {exc.message}")
            project.ledger.append(
                Draft(
                    kind="rollback-failed",
                    environment=environment,
                    release=release.id,
                    actor=project.actor,
                    time=now_utc(),
                    reason=exc.message,
                    details={"analysis": analysis.verdict},
                )
            )
    if failures:
        raise EnvironmentFailure(
            f"the analysis of {release.id} in {environment} failed ({analysis.reason}), and so did: "
            + "; ".join(failures)
            + (f" (done: {'; '.join(done)})" if done else "")
        )
    return tuple(done)


def trip_kill_switches(project: Project, environment: str, reason: str) -> tuple[list[str], list[str]]:
    """Turn off every kill switch `on-failure` names for `environment`, each tried whatever the
    others did; returns what was done and what failed, in words."""
    done, failures = [], []
    for flag in project.config.environments[environment].on_failure.kill_switches:
        try:
            done.append(
                switch_flag(project.config, project.workdir, project.ledger, project.actor, flag, environment, reason)
            )
        except PipelineKitError as exc:  # noqa: PERF203 - each switch is tried, whatever the others did
            failures.append(f"kill switch {flag}: {exc.message}")
        except Exception as exc:  # a failure nobody foresaw: the switches after it, and the rollback, still run
            failures.append(f"kill switch {flag}: {type(exc).__name__}: {first_line(exc)}")
    return done, failures


def switch_flag(
    config: Config,
    workdir: Path,
    ledger: Ledger,
    actor: str,
    flag: str,
    environment: str,
    reason: str,
    *,
    restore: bool = False,
) -> str:
    """Turn the kill switch `flag` off (or back on) in `environment` and record it in the ledger."""
    import os

    from pipeline_kit.flags import open_switches

    check_environment(config, environment)
    switches = open_switches(config, workdir, os.environ)
    what = switches.restore(flag, environment) if restore else switches.kill(flag, environment)
    ledger.append(
        Draft(
            kind="flag-restored" if restore else "flag-killed",
            environment=environment,
            actor=actor,
            time=now_utc(),
            reason=reason,
            details={"flag": flag, "switches": switches.kind, "change": what},
        )
    )
    return what
