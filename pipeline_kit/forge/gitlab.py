"""GitLab, through python-gitlab: deployments, commit statuses and freeze periods."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from pipeline_kit.forge.interface import Approvals, DeploymentRecord, DeploymentState, Forge, ForgeError, FreezePeriod

TIMEOUT = 15
STATES = {"in_progress": "running", "success": "success", "failure": "failed"}
HISTORY = 30


class GitLabForge(Forge):
    name = "gitlab"

    def __init__(self, url: str, project: str, token: str, *, job_token: bool = False) -> None:
        import gitlab

        self.project_id = project
        self.client = gitlab.Gitlab(
            url.rstrip("/"),
            private_token=None if job_token else token,
            job_token=token if job_token else None,
            timeout=TIMEOUT,
            retry_transient_errors=False,
        )
        self.project = self.client.projects.get(project, lazy=True)

    def describe(self) -> str:
        return f"gitlab {self.project_id}"

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        from gitlab.exceptions import GitlabError
        from requests import RequestException

        try:
            return function(*args, **kwargs)
        except GitlabError as exc:
            raise ForgeError(f"GitLab {what} failed: HTTP {exc.response_code}: {exc.error_message}") from exc
        except RequestException as exc:
            raise ForgeError(f"GitLab {what} failed: {type(exc).__name__}: {exc}") from exc

    def start_deployment(self, environment: str, sha: str, ref: str | None, payload: dict[str, object]) -> str:
        tag = bool(ref and ref.startswith("refs/tags/"))
        name = (ref or sha).removeprefix("refs/tags/").removeprefix("refs/heads/")
        deployment = self._call(
            "deployment",
            self.project.deployments.create,
            {"environment": environment, "sha": sha, "ref": name, "tag": tag, "status": "running"},
        )
        return str(deployment.id)

    def finish_deployment(self, deployment_id: str, environment: str, state: DeploymentState, description: str) -> None:
        deployment = self._call("deployment", self.project.deployments.get, int(deployment_id), lazy=True)
        deployment.status = STATES[state]
        self._call("deployment update", deployment.save)

    def commit_status(self, sha: str, state: Literal["success", "failure"], context: str, description: str) -> None:
        commit = self.project.commits.get(sha, lazy=True)
        self._call(
            "commit status",
            commit.statuses.create,
            {"state": "success" if state == "success" else "failed", "name": context, "description": description[:255]},
        )

    def deployments(self, environment: str) -> list[DeploymentRecord]:
        # GitLab deployments carry no payload: the release is known by its commit
        deployments = self._call(
            "deployments",
            self.project.deployments.list,
            environment=environment,
            order_by="created_at",
            sort="desc",
            per_page=HISTORY,
            get_all=False,
        )
        return [
            DeploymentRecord(
                environment=environment,
                release=None,
                sha=str(d.sha),
                state={"failed": "failure", "running": "in_progress"}.get(str(d.status), str(d.status)),
                time=datetime.fromisoformat(str(d.updated_at or d.created_at).replace("Z", "+00:00")),
            )
            for d in deployments
        ]

    def approvals(self, sha: str) -> Approvals:
        raise ForgeError("GitLab approvals are not supported yet: use GitLab's protected environments approvals")

    def freeze_periods(self) -> list[FreezePeriod]:
        # python-gitlab has no manager for freeze periods: its paginating list call does the job
        path = f"/projects/{quote(self.project_id, safe='')}/freeze_periods"
        periods = self._call("freeze periods", self.client.http_list, path, get_all=True)
        if not isinstance(periods, list):
            raise ForgeError("GitLab freeze periods: expected a list")
        return [
            FreezePeriod(str(p["freeze_start"]), str(p["freeze_end"]), str(p.get("cron_timezone") or "UTC"))
            for p in periods
        ]
