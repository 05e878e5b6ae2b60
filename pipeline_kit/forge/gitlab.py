"""GitLab, through python-gitlab: deployments, commit statuses, freeze periods, merge request and
deployment approvals, and the commit's job statuses as checks.

In a job with `environment:`, GitLab itself opens a deployment for the job (and ends it with the
job); the kit adopts that one instead of creating a second, and reads its approvals.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from pipeline_kit.forge.interface import (
    Approvals,
    CommitCheck,
    DeploymentRecord,
    DeploymentState,
    Forge,
    ForgeError,
    FreezePeriod,
)

TIMEOUT = 15
STATES = {"in_progress": "running", "success": "success", "failure": "failed"}
HISTORY = 30
# job and status states (doc/api/commits.md): what counts as a pass, and what is still to come
PASSING = ("success",)
UNFINISHED = ("created", "waiting_for_resource", "preparing", "pending", "running", "scheduled", "manual")


class GitLabForge(Forge):
    name = "gitlab"

    def __init__(
        self, url: str, project: str, token: str, *, job_token: bool = False, job_id: str | None = None
    ) -> None:
        import gitlab

        self.project_id = project
        self.job_id = job_id  # CI_JOB_ID: whose deployment GitLab opened for this job
        self.own: dict[str, Any] = {}  # environment -> this job's deployment there (None: none), asked once
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

    def _recent_deployments(self, environment: str, **filters: str) -> Any:
        """The newest deployments to `environment` (at most HISTORY), newest first."""
        return self._call(
            "deployments",
            self.project.deployments.list,
            environment=environment,
            order_by="id",
            sort="desc",
            per_page=HISTORY,
            get_all=False,
            **filters,
        )

    def _job_deployment(self, environment: str) -> Any:
        """The deployment GitLab opened for this very job, if it runs with `environment:` (asked
        once: the approvals gate and the deployment record both want it)."""
        if not self.job_id:
            return None
        if environment not in self.own:  # remembered only once GitLab has answered
            running = self._recent_deployments(environment, status="running")
            self.own[environment] = next((d for d in running if _deployed_by(d, self.job_id)), None)
        return self.own[environment]

    def start_deployment(self, environment: str, sha: str, ref: str | None, payload: dict[str, object]) -> str:
        own = self._job_deployment(environment)
        if own is not None:
            return str(own.id)
        tag = bool(ref and ref.startswith("refs/tags/"))
        name = (ref or sha).removeprefix("refs/tags/").removeprefix("refs/heads/")
        deployment = self._call(
            "deployment",
            self.project.deployments.create,
            {"environment": environment, "sha": sha, "ref": name, "tag": tag, "status": "running"},
        )
        return str(deployment.id)

    def finish_deployment(self, deployment_id: str, environment: str, state: DeploymentState, description: str) -> None:
        own = self.own.get(environment)
        if own is not None and str(own.id) == deployment_id:
            return  # GitLab ends the job's deployment with the job, whose exit status is ours
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
        deployments = self._recent_deployments(environment)
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

    def approvals(self, sha: str, environment: str) -> Approvals:
        approvers: set[str] = set()
        rejected: set[str] = set()
        authors: list[str] = []
        sources: list[str] = []
        commit = self.project.commits.get(sha, lazy=True)
        requests = self._call("merge requests of the commit", commit.merge_requests, get_all=True)
        merged = [r for r in requests if isinstance(r, dict) and r.get("state") == "merged"]
        if merged:
            request = merged[0]
            lazy = self.project.mergerequests.get(request["iid"], lazy=True)
            approval = self._call("merge request approvals", lazy.approvals.get)
            approvers.update(a["user"]["username"] for a in approval.approved_by if a.get("user"))
            authors.append(str(request["author"]["username"]))
            sources.append(f"merge request !{request['iid']} approvals")
        own = self._job_deployment(environment)
        if own is not None:
            deployment = self._call("deployment", self.project.deployments.get, own.id)
            for decision in getattr(deployment, "approvals", None) or []:
                user = (decision.get("user") or {}).get("username")
                if user:
                    (approvers if decision.get("status") == "approved" else rejected).add(str(user))
            sources.append(f"deployment {own.id} approvals")
        if not sources:
            raise ForgeError(
                f"no merged merge request contains {sha[:12]} and this job opened no deployment to"
                f" {environment}: nobody approved it"
            )
        return Approvals(
            approvers=tuple(sorted(approvers - rejected)),
            authors=tuple(authors),
            source=" and ".join(sources),
            rejected=tuple(sorted(rejected)),
        )

    def commit_checks(self, sha: str) -> list[CommitCheck]:
        # every CI job of the commit's pipelines and every external status, the latest per name
        commit = self.project.commits.get(sha, lazy=True)
        checks = []
        state: Literal["success", "failure", "pending"]
        for status in self._call("commit statuses", commit.statuses.list, get_all=True):
            raw = str(status.status)
            state = "success" if raw in PASSING else "pending" if raw in UNFINISHED else "failure"
            checks.append(CommitCheck(str(status.name), state, f"job {raw}"))
        return checks

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


def _deployed_by(deployment: Any, job_id: str) -> bool:
    deployable = getattr(deployment, "deployable", None)
    return isinstance(deployable, dict) and str(deployable.get("id")) == job_id
