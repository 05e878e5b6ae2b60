"""Forges: GitHub (PyGithub) and GitLab (python-gitlab), chosen from the CI context.

Tokens come from the environment only: GitHub `GITHUB_TOKEN`; GitLab `PIPELINE_KIT_GITLAB_TOKEN`
(a project or personal token) or the job's `CI_JOB_TOKEN`. The clients are imported only when a
forge is used.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline_kit.config import ForgeConfig
from pipeline_kit.forge.interface import (
    Approvals,
    CommitCheck,
    DeploymentRecord,
    DeploymentState,
    Forge,
    ForgeError,
    FreezePeriod,
)

__all__ = [
    "Approvals",
    "CommitCheck",
    "DeploymentRecord",
    "DeploymentState",
    "Forge",
    "ForgeError",
    "FreezePeriod",
    "open_forge",
]


def open_forge(config: ForgeConfig, env: Mapping[str, str]) -> Forge | None:
    """The forge this run talks to, or None (local runs, `forge: {type: none}`, or `auto` without
    a token: the records are then skipped, and any gate that needs the forge fails closed)."""
    kind = config.type
    if kind == "auto":
        kind = (
            "github" if env.get("GITHUB_ACTIONS") == "true" else "gitlab" if env.get("GITLAB_CI") == "true" else "none"
        )
        names = [config.token_variable] if config.token_variable else []
        names += ["GITHUB_TOKEN"] if kind == "github" else ["PIPELINE_KIT_GITLAB_TOKEN", "CI_JOB_TOKEN"]
        if kind != "none" and not any(env.get(name) for name in names if name):
            return None
    if kind == "none":
        return None
    if kind == "github":
        from pipeline_kit.forge.github import GitHubForge

        variable = config.token_variable or "GITHUB_TOKEN"
        token = env.get(variable)
        repository = config.project or env.get("GITHUB_REPOSITORY")
        if not token or not repository:
            raise ForgeError(
                f"GitHub forge: {f'no token in ${variable}' if not token else 'no repository'}",
                hint="pass `env: GITHUB_TOKEN: ${{ github.token }}` to the step, or set forge.type: none",
            )
        return GitHubForge(config.url or env.get("GITHUB_API_URL", "https://api.github.com"), repository, token)
    from pipeline_kit.forge.gitlab import GitLabForge

    variable = config.token_variable or "PIPELINE_KIT_GITLAB_TOKEN"
    token, job_token = env.get(variable), False
    if not token and env.get("CI_JOB_TOKEN"):
        token, job_token = env["CI_JOB_TOKEN"], True
    project = config.project or env.get("CI_PROJECT_ID")
    if not token or not project:
        raise ForgeError(
            f"GitLab forge: {'no token in $' + variable + ' or $CI_JOB_TOKEN' if not token else 'no project'}"
        )
    return GitLabForge(
        config.url or env.get("CI_SERVER_URL", "https://gitlab.com"),
        project,
        token,
        job_token=job_token,
        job_id=env.get("CI_JOB_ID") if env.get("GITLAB_CI") == "true" else None,
    )
