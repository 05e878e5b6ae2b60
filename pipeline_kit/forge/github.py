"""GitHub, through PyGithub: deployments and their statuses, commit statuses, the attestations
API, and pull-request reviews as approvals."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode

from pipeline_kit.forge.interface import Approvals, CommitCheck, DeploymentRecord, DeploymentState, Forge, ForgeError

PASSING_CONCLUSIONS = ("success", "neutral", "skipped")
HISTORY = 30  # deployments looked at per environment (the newest)

TIMEOUT = 15


class GitHubForge(Forge):
    name = "github"

    def __init__(self, api_url: str, repository: str, token: str) -> None:
        from github import Auth, Github

        self.repository = repository
        # No retries inside the client: a failing forge fails the gate now, and says so.
        self.client = Github(
            auth=Auth.Token(token), base_url=api_url.rstrip("/"), timeout=TIMEOUT, retry=None, lazy=True
        )
        self.repo = self.client.get_repo(repository)

    def describe(self) -> str:
        return f"github {self.repository}"

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        from github import GithubException
        from requests import RequestException

        try:
            return function(*args, **kwargs)
        except GithubException as exc:
            message = exc.data.get("message") if isinstance(exc.data, dict) else None
            raise ForgeError(f"GitHub {what} failed: HTTP {exc.status}{f': {message}' if message else ''}") from exc
        except RequestException as exc:
            raise ForgeError(f"GitHub {what} failed: {type(exc).__name__}: {exc}") from exc

    def _request(
        self, what: str, verb: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], Any]:
        url = f"{self.repo.url}{path}"
        return self._call(what, self.client.requester.requestJsonAndCheck, verb, url, input=body)  # type: ignore[no-any-return]

    def _get_all(self, what: str, path: str, key: str | None = None) -> list[Any]:
        """Every page of a list (GitHub paginates with Link: <...>; rel="next"); `key` names the
        list inside an object response (check runs)."""
        items: list[Any] = []
        url: str | None = f"{self.repo.url}{path}"
        while url:
            headers, data = self._call(what, self.client.requester.requestJsonAndCheck, "GET", url)
            page = data.get(key) if key and isinstance(data, dict) else data
            if not isinstance(page, list):
                raise ForgeError(f"GitHub {what}: expected a list")
            items += page
            url = _next_link(headers.get("link", ""))
        return items

    def start_deployment(self, environment: str, sha: str, ref: str | None, payload: dict[str, object]) -> str:
        deployment = self._call(
            "deployment",
            self.repo.create_deployment,
            ref=sha,
            environment=environment,
            payload=payload,
            auto_merge=False,
            required_contexts=[],
            description=f"pipeline-kit: {payload.get('release')}",
        )
        self._call("deployment status", deployment.create_status, state="in_progress", environment=environment)
        return str(deployment.id)

    def finish_deployment(self, deployment_id: str, environment: str, state: DeploymentState, description: str) -> None:
        deployment = self._call("deployment", self.repo.get_deployment, int(deployment_id))
        self._call(
            "deployment status",
            deployment.create_status,
            state=state,
            environment=environment,
            description=description[:140],
        )

    def commit_status(self, sha: str, state: Literal["success", "failure"], context: str, description: str) -> None:
        self._request(
            "commit status",
            "POST",
            f"/statuses/{sha}",
            {"state": state, "context": context, "description": description[:140]},
        )

    def upload_attestation(self, bundle: bytes) -> str | None:
        _, data = self._request("attestation upload", "POST", "/attestations", {"bundle": json.loads(bundle)})
        return str(data.get("id")) if isinstance(data, dict) and data.get("id") is not None else None

    def attestations(self, sha256: str) -> list[bytes]:
        from github import GithubException

        try:
            items = self._get_all("attestations", f"/attestations/sha256:{sha256}", key="attestations")
        except ForgeError as exc:
            cause = exc.__cause__
            if isinstance(cause, GithubException) and cause.status == 404:
                return []  # GitHub answers 404 for a digest it holds no attestation about
            raise
        return [json.dumps(item["bundle"]).encode() for item in items if isinstance(item.get("bundle"), dict)]

    def deployments(self, environment: str) -> list[DeploymentRecord]:
        query = urlencode({"environment": environment, "per_page": HISTORY})
        _, deployments = self._request("deployments", "GET", f"/deployments?{query}")
        records = []
        for deployment in deployments if isinstance(deployments, list) else []:
            _, statuses = self._request(
                "deployment statuses", "GET", f"/deployments/{deployment['id']}/statuses?per_page=1"
            )
            latest = statuses[0] if isinstance(statuses, list) and statuses else None
            payload = deployment.get("payload") if isinstance(deployment.get("payload"), dict) else {}
            records.append(
                DeploymentRecord(
                    environment=environment,
                    release=str(payload["release"]) if payload.get("release") else None,
                    sha=str(deployment.get("sha")),
                    state=str(latest["state"]) if latest else "pending",
                    time=_timestamp(latest["created_at"] if latest else deployment["created_at"]),
                )
            )
        return records

    def commit_checks(self, sha: str) -> list[CommitCheck]:
        checks = []
        state: Literal["success", "failure", "pending"]
        for run in self._get_all("check runs", f"/commits/{sha}/check-runs", key="check_runs"):
            if run.get("status") != "completed":
                checks.append(CommitCheck(run["name"], "pending", f"check run {run.get('status')}"))
            else:
                state = "success" if run.get("conclusion") in PASSING_CONCLUSIONS else "failure"
                checks.append(CommitCheck(run["name"], state, f"check run {run.get('conclusion')}"))
        _, combined = self._request("commit status", "GET", f"/commits/{sha}/status")
        for status in combined.get("statuses", []) if isinstance(combined, dict) else []:
            raw = status.get("state")
            state = "success" if raw == "success" else "pending" if raw == "pending" else "failure"
            checks.append(CommitCheck(status["context"], state, f"status {raw}"))
        return checks

    def approvals(self, sha: str, environment: str) -> Approvals:
        pulls = [p for p in self._get_all("pull requests of the commit", f"/commits/{sha}/pulls") if p.get("merged_at")]
        if not pulls:
            raise ForgeError(f"no merged pull request contains {sha[:12]}: nobody reviewed it")
        pull = pulls[0]
        head = (pull.get("head") or {}).get("sha")
        reviews = self._get_all("pull request reviews", f"/pulls/{pull['number']}/reviews")
        latest: dict[str, tuple[str, str | None]] = {}
        for review in reviews:  # a reviewer's last word counts
            if review.get("user") and review.get("state") in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[review["user"]["login"]] = (review["state"], review.get("commit_id"))
        # An approval counts only for the head that was merged: code pushed after it was not reviewed.
        approved = {user: commit for user, (state, commit) in latest.items() if state == "APPROVED"}
        # every author of a commit in the reviewed range, not only the opener, wrote the change
        authors = {pull["user"]["login"]} if pull.get("user") else set()
        for commit in self._get_all("pull request commits", f"/pulls/{pull['number']}/commits"):
            for role in ("author", "committer"):
                person = commit.get(role) if isinstance(commit, dict) else None
                if isinstance(person, dict) and person.get("login"):
                    authors.add(str(person["login"]))
        return Approvals(
            approvers=tuple(sorted(u for u, commit in approved.items() if head and commit == head)),
            authors=tuple(sorted(authors)),
            source=f"pull request #{pull['number']} reviews",
            rejected=tuple(sorted(u for u, (s, _) in latest.items() if s == "CHANGES_REQUESTED")),
            stale=tuple(sorted(u for u, commit in approved.items() if not head or commit != head)),
        )


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        url, _, rel = part.partition(";")
        if 'rel="next"' in rel:
            return url.strip().strip("<>")
    return None
