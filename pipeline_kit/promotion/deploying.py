"""Deploying a release: the environment's deploy command, run with the release's variables and
recorded in the ledger however it ends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from pipeline_kit._internal.proc import run_streaming
from pipeline_kit.errors import BuildFailed
from pipeline_kit.evidence import EvidenceDir
from pipeline_kit.gates import PromotionContext
from pipeline_kit.gates.command import release_environment
from pipeline_kit.ledger import Draft
from pipeline_kit.models import Release
from pipeline_kit.promotion.model import Project, now_utc


def run_deploy(
    project: Project,
    environment: str,
    release: Release,
    evidence: EvidenceDir,
    deploy: str | Sequence[str] | None,
    on_output: Callable[[str], None] | None,
    details: dict[str, Any] | None = None,
    extra_env: dict[str, str] | None = None,
    kind: Literal["deployed", "canary-deployed"] = "deployed",
    on_success: Callable[[], tuple[dict[str, Any], list[bytes]]] | None = None,
) -> bool | None:
    """Run the deploy command for `release` and record how it went (`kind` when it succeeded).
    `on_success`: what to add to that entry once the command succeeded (details, attachments):
    the VSA of a promotion, signed only now, so that no signed arrival says more than the deploy."""
    command = deploy if deploy else project.config.environments[environment].deploy
    if not command:
        return None
    context = PromotionContext(
        release, environment, project.config, evidence, project.workdir, (), now_utc(), project.actor
    )
    try:
        env = {**release_environment(context, project.config.environments[environment].pass_env), **(extra_env or {})}
        outcome = run_streaming(command, cwd=project.workdir, env=env, on_line=on_output)
        code, tail = outcome.returncode, outcome.tail
    except OSError as exc:
        code, tail = 127, str(exc.strerror)
    added, attachments = on_success() if code == 0 and on_success is not None else ({}, [])
    project.ledger.append(
        Draft(
            kind=kind if code == 0 else "deploy-failed",
            environment=environment,
            release=release.id,
            subjects={s.name: s.sha256 for s in release.subjects},
            actor=project.actor,
            time=now_utc(),
            details={"exit_code": code, **(details or {}), **added},
        ),
        attachments,
    )
    if code != 0:
        raise BuildFailed(
            f"deploy to {environment} exited with code {code}; recorded in the ledger",
            hint=f"last lines of its output:\n{tail or '(no output)'}",
        )
    return True
