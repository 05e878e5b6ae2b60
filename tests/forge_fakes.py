"""Local fakes of the GitHub and GitLab REST endpoints the kit uses.

Every request the kit makes and every response a fake gives is validated against the official
API description (tests/assets/api-specs, see SOURCES.md there) with openapi-core; any mismatch is
recorded in `violations`, which the fixtures assert empty, so a fake cannot drift from the API.
Responses are built from the schemas themselves (`example`), then given the values a test cares
about, so they carry every property the real API requires.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

SPECS = Path(__file__).resolve().parent / "assets" / "api-specs"
logging.getLogger("werkzeug").setLevel(logging.ERROR)
F = TypeVar("F", bound="SpecFake")
Handler = Callable[..., tuple[int, Any] | tuple[int, Any, dict[str, str]]]


class SpecFake:
    """A threaded HTTP server whose routes are checked against an OpenAPI description."""

    spec_file: str
    # descriptions merged into the official one, for endpoints it lacks (see SOURCES.md)
    extra_spec_files: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.spec = _load(self.spec_file)
        for name in self.extra_spec_files:
            extra = _load(name)
            self.spec["paths"].update(extra["paths"])
            self.spec["components"]["schemas"].update(extra["components"]["schemas"])
        self.spec["servers"] = [{"url": self.url}]
        _allow_null_in_nullable_enums(self.spec)
        self.correct(self.spec)
        self.api = OpenAPI.from_dict(self.spec, config=Config(spec_validator_cls=None))
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.violations: list[str] = []
        self.calls: list[tuple[str, str, Any]] = []
        # failure injection: path regex -> (status, body, headers), served once
        self.failures: list[tuple[re.Pattern[str], tuple[int, Any, dict[str, str]]]] = []
        self.delay = 0.0
        self.in_flight = self.most_in_flight = 0  # requests being served at once, and the peak
        self._counting = threading.Lock()
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def correct(self, spec: dict[str, Any]) -> None:
        """Mend where the official description contradicts the API's own documentation."""

    def start(self: F) -> F:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append((method, re.compile(f"^{pattern}$"), handler))
            return handler

        return register

    def fail_once(self, pattern: str, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.failures.append((re.compile(pattern), (status, body, headers or {})))

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_json(silent=True)
        self.calls.append((request.method, request.path, body))
        try:
            self.api.validate_request(WerkzeugOpenAPIRequest(request))
        except Exception as exc:  # every kind of mismatch is a finding
            self.violations.append(f"request {request.method} {request.path}: {_explain(exc)}")
        response = self._dispatch(request, body)
        if response.status_code < 300:
            try:
                self.api.validate_response(WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(response))
            except Exception as exc:
                self.violations.append(f"response {request.method} {request.path}: {_explain(exc)}")
        return response(environ, start_response)

    def _dispatch(self, request: Request, body: Any) -> Response:
        with self._counting:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
        finally:
            with self._counting:
                self.in_flight -= 1
        for pattern, (status, payload, headers) in list(self.failures):
            if pattern.search(request.path):
                self.failures.remove((pattern, (status, payload, headers)))
                return Response(json.dumps(payload), status, headers, content_type="application/json")
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if method == request.method and match:
                try:
                    result = handler(request, body, **match.groupdict())
                except Exception as exc:  # a fake that cannot answer is a test bug: report it
                    self.violations.append(f"fake handler for {request.method} {request.path}: {exc!r} (body {body!r})")
                    return Response(json.dumps({"message": "fake failed"}), 500, content_type="application/json")
                status, payload = result[0], result[1]
                headers = result[2] if len(result) > 2 else {}
                return Response(json.dumps(payload), status, headers, content_type="application/json")
        self.violations.append(f"unexpected call {request.method} {request.path}")
        return Response(json.dumps({"message": "Not Found"}), 404, content_type="application/json")

    # -- schema-driven response bodies -------------------------------------------------------
    def schema(self, name: str) -> dict[str, Any]:
        return self.spec["components"]["schemas"][name]  # type: ignore[no-any-return]

    def example(self, schema_name: str, /, **overrides: Any) -> dict[str, Any]:
        value = self._instance(self.schema(schema_name))
        assert isinstance(value, dict)
        value.update(overrides)
        return value

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def _instance(self, schema: dict[str, Any]) -> Any:
        schema = self._resolve(schema)
        if "allOf" in schema:
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                merged.update(self._instance(part) or {})
            return merged
        for key in ("oneOf", "anyOf"):
            if key in schema:
                return self._instance(schema[key][0])
        if schema.get("nullable"):
            return None
        if "enum" in schema:
            return copy.deepcopy(schema["enum"][0])
        kind = schema.get("type", "object")
        if kind == "object":
            properties = schema.get("properties", {})
            return {name: self._instance(properties[name]) for name in schema.get("required", []) if name in properties}
        if kind == "array":
            return []
        if kind == "integer":
            return 1
        if kind == "number":
            return 1.0
        if kind == "boolean":
            return False
        return {
            "date-time": "2026-11-22T00:00:00Z",
            "uri": "https://example.com/x",
            "email": "a@example.com",
            "uri-template": "https://example.com/{x}",
        }.get(schema.get("format", ""), "x")


def _load(name: str) -> dict[str, Any]:
    text = (SPECS / name).read_text()
    return json.loads(text) if name.endswith(".json") else yaml.safe_load(text)  # type: ignore[no-any-return]


def _allow_null_in_nullable_enums(node: Any) -> None:
    """`nullable: true` with an `enum` lacking null (e.g. a check run's `conclusion`, null until it
    completes) is how the descriptions say "one of these, or null"; the validator reads OpenAPI
    3.0.3 strictly and wants null in the enum, so add it where the description marks nullable."""
    if isinstance(node, dict):
        if node.get("nullable") is True and isinstance(node.get("enum"), list) and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
        for value in node.values():
            _allow_null_in_nullable_enums(value)
    elif isinstance(node, list):
        for value in node:
            _allow_null_in_nullable_enums(value)


def _explain(exc: BaseException) -> str:
    cause = exc.__cause__
    errors = getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", None)
    if errors:
        return "; ".join(str(getattr(e, "message", e)) for e in errors)[:400]
    return f"{type(exc).__name__}: {exc}"[:400]


class GitHubFake(SpecFake):
    spec_file = "github-subset.json"

    def __init__(self, owner: str = "acme", repo: str = "hello") -> None:
        super().__init__()
        self.deployments: dict[int, dict[str, Any]] = {}
        self.deployment_statuses: list[dict[str, Any]] = []
        self.commit_statuses: list[dict[str, Any]] = []
        self.attestations: list[dict[str, Any]] = []
        self.pulls: dict[str, list[dict[str, Any]]] = {}  # commit -> pulls
        self.reviews: dict[int, list[dict[str, Any]]] = {}  # pull number -> reviews
        self.pull_commits: dict[int, list[dict[str, Any]]] = {}  # pull number -> commits
        self.page_size = 100
        self.check_runs: dict[str, list[dict[str, Any]]] = {}  # commit -> check runs
        self.statuses: dict[str, list[dict[str, Any]]] = {}  # commit -> statuses (combined view)
        base = f"/repos/{owner}/{repo}"

        @self.route("GET", f"{base}/commits/(?P<sha>[0-9a-f]+)/check-runs")
        def check_runs(request: Request, body: Any, sha: str) -> tuple[int, Any, dict[str, str]]:
            items = self.check_runs.get(sha, [])
            page = int(request.args.get("page", "1"))
            chunk = items[(page - 1) * self.page_size : page * self.page_size]
            headers = {}
            if page * self.page_size < len(items):
                headers["Link"] = f'<{self.url}{request.path}?page={page + 1}>; rel="next"'
            return 200, {"total_count": len(items), "check_runs": chunk}, headers

        @self.route("GET", f"{base}/commits/(?P<sha>[0-9a-f]+)/status")
        def combined_status(request: Request, body: Any, sha: str) -> tuple[int, Any]:
            statuses = self.statuses.get(sha, [])
            state = "failure" if any(s["state"] != "success" for s in statuses) else "success"
            return 200, self.example(
                "combined-commit-status", sha=sha, state=state, statuses=statuses, total_count=len(statuses)
            )

        @self.route("POST", f"{base}/deployments")
        def create_deployment(request: Request, body: Any) -> tuple[int, Any]:
            number = len(self.deployments) + 1
            url = f"{self.url}{base}/deployments/{number}"
            deployment = self.example(
                "deployment",
                id=number,
                sha=body["ref"],
                ref=body["ref"],
                environment=body["environment"],
                payload=body.get("payload", {}),
                description=body.get("description"),
                url=url,
                statuses_url=f"{url}/statuses",
                repository_url=f"{self.url}{base}",
            )
            self.deployments[number] = deployment
            return 201, deployment

        @self.route("GET", f"{base}/deployments")
        def list_deployments(request: Request, body: Any) -> tuple[int, Any]:
            environment = request.args.get("environment")
            chosen = [d for d in self.deployments.values() if environment in (None, d["environment"])]
            return 200, sorted(chosen, key=lambda d: d["id"], reverse=True)[: int(request.args.get("per_page", "30"))]

        @self.route("GET", f"{base}/deployments/(?P<number>[0-9]+)/statuses")
        def list_deployment_statuses(request: Request, body: Any, number: str) -> tuple[int, Any]:
            mine = [
                {k: v for k, v in s.items() if k != "deployment"}
                for s in self.deployment_statuses
                if s["deployment"] == int(number)
            ]
            return 200, list(reversed(mine))[: int(request.args.get("per_page", "30"))]

        @self.route("GET", f"{base}/deployments/(?P<number>[0-9]+)")
        def get_deployment(request: Request, body: Any, number: str) -> tuple[int, Any]:
            return 200, self.deployments[int(number)]

        @self.route("POST", f"{base}/deployments/(?P<number>[0-9]+)/statuses")
        def create_deployment_status(request: Request, body: Any, number: str) -> tuple[int, Any]:
            status = self.example(
                "deployment-status",
                id=len(self.deployment_statuses) + 1,
                state=body["state"],
                environment=body.get("environment", ""),
                description=body.get("description", ""),
            )
            self.deployment_statuses.append({"deployment": int(number), **status})
            return 201, status

        @self.route("POST", f"{base}/statuses/(?P<sha>[0-9a-f]+)")
        def create_commit_status(request: Request, body: Any, sha: str) -> tuple[int, Any]:
            self.commit_statuses.append({"sha": sha, **body})
            return 201, self.example("status", state=body["state"], context=body.get("context", "default"))

        @self.route("POST", f"{base}/attestations")
        def create_attestation(request: Request, body: Any) -> tuple[int, Any]:
            self.attestations.append(body["bundle"])
            return 201, {"id": len(self.attestations)}

        @self.route("GET", f"{base}/attestations/sha256:(?P<digest>[0-9a-f]{{64}})")
        def list_attestations(request: Request, body: Any, digest: str) -> tuple[int, Any]:
            found = [bundle for bundle in self.attestations if digest in _subject_digests(bundle)]
            return 200, {"attestations": [{"bundle": bundle, "repository_id": 1} for bundle in found]}

        @self.route("GET", f"{base}/commits/(?P<sha>[0-9a-f]+)/pulls")
        def commit_pulls(request: Request, body: Any, sha: str) -> tuple[int, Any]:
            return 200, self.pulls.get(sha, [])

        @self.route("GET", f"{base}/pulls/(?P<number>[0-9]+)/commits")
        def pull_commits(request: Request, body: Any, number: str) -> tuple[int, Any]:
            return 200, self.pull_commits.get(int(number), [])

        @self.route("GET", f"{base}/pulls/(?P<number>[0-9]+)/reviews")
        def reviews(request: Request, body: Any, number: str) -> tuple[int, Any, dict[str, str]]:
            items = self.reviews.get(int(number), [])
            page = int(request.args.get("page", "1"))
            chunk = items[(page - 1) * self.page_size : page * self.page_size]
            headers = {}
            if page * self.page_size < len(items):
                headers["Link"] = f'<{self.url}{request.path}?page={page + 1}>; rel="next"'
            return 200, chunk, headers

    def add_deployment(self, environment: str, release: str, sha: str, state: str, at: str) -> None:
        """A deployment an earlier pipeline recorded, ending in `state` at time `at`."""
        number = len(self.deployments) + 1
        self.deployments[number] = self.example(
            "deployment",
            id=number,
            sha=sha,
            ref=sha,
            environment=environment,
            payload={"release": release},
            created_at=at,
            updated_at=at,
        )
        self.deployment_statuses.append(
            {
                "deployment": number,
                **self.example(
                    "deployment-status", id=len(self.deployment_statuses) + 1, state=state, created_at=at, updated_at=at
                ),
            }
        )

    def add_check(self, sha: str, name: str, status: str, conclusion: str | None) -> None:
        self.check_runs.setdefault(sha, []).append(
            self.example(
                "check-run",
                id=len(self.check_runs.get(sha, [])) + 1,
                name=name,
                head_sha=sha,
                status=status,
                conclusion=conclusion,
            )
        )

    def add_status(self, sha: str, context: str, state: str) -> None:
        self.statuses.setdefault(sha, []).append(self.example("simple-commit-status", context=context, state=state))

    def add_pull(
        self, sha: str, number: int, author: str, approvals: list[tuple[str, ...]], committers: tuple[str, ...] = ()
    ) -> None:
        """A merged pull request whose head is `sha`, its commits authored by `author` and by each of
        `committers`; each review is (login, state[, commit reviewed])."""
        user = self.example("simple-user", login=author)
        self.pull_commits[number] = [
            self.example(
                "commit",
                sha=f"{i:040x}",
                author=self.example("simple-user", login=login),
                committer=self.example("simple-user", login="web-flow"),
            )
            for i, login in enumerate((author, *committers), start=1)
        ]
        pull = self.example("pull-request-simple", number=number, user=user, merged_at="2026-11-21T10:00:00Z")
        pull["head"] = {**pull["head"], "sha": sha}
        self.pulls.setdefault(sha, []).append(pull)
        self.reviews[number] = [
            self.example(
                "pull-request-review",
                id=i,
                user=self.example("simple-user", login=review[0]),
                state=review[1],
                commit_id=review[2] if len(review) > 2 else sha,
            )
            for i, review in enumerate(approvals, start=1)
        ]


class GitLabFake(SpecFake):
    spec_file = "gitlab-subset.yaml"
    extra_spec_files = ("gitlab-rest-docs.yaml",)

    def correct(self, spec: dict[str, Any]) -> None:
        # GitLab's generated description drops Grape's `is_array` on these three: it says a
        # deployment's `approvals` is one approval object, where doc/api/deployments.md (and the
        # API) give a list; likewise `approval_summary.rules` and each rule's `deployment_approvals`.
        schemas = spec["components"]["schemas"]
        for schema, field in (
            ("APIEntitiesDeploymentExtended", "approvals"),
            ("APIEntitiesDeploymentsApprovalSummary", "rules"),
            ("APIEntitiesProtectedEnvironmentsApprovalRuleForSummary", "deployment_approvals"),
        ):
            item = schemas[schema]["properties"][field]
            assert "$ref" in item, f"{schema}.{field} changed upstream: review this correction"
            schemas[schema]["properties"][field] = {"type": "array", "items": item}

    def __init__(self, project: str = "42") -> None:
        super().__init__()
        self.deployments: dict[int, dict[str, Any]] = {}
        self.updates: list[tuple[int, str]] = []
        self.commit_statuses: list[dict[str, Any]] = []
        self.freeze_periods: list[dict[str, Any]] = []
        self.merge_requests: dict[str, list[dict[str, Any]]] = {}  # commit -> merge requests
        self.approved_by: dict[int, list[str]] = {}  # merge request iid -> usernames
        self.job_statuses: dict[str, list[dict[str, Any]]] = {}  # commit -> job/external statuses
        self.page_size = 100
        base = f"/api/v4/projects/{project}"

        def page(request: Request, items: list[Any]) -> tuple[int, Any, dict[str, str]]:
            """GitLab's offset pagination: a page of items, and a Link to the next."""
            size = min(int(request.args.get("per_page", "20")), self.page_size)
            number = int(request.args.get("page", "1"))
            headers = {"X-Page": str(number), "X-Per-Page": str(size), "X-Total": str(len(items))}
            if number * size < len(items):
                query = urlencode({**request.args.to_dict(), "page": number + 1})
                headers["Link"] = f'<{self.url}{request.path}?{query}>; rel="next"'
                headers["X-Next-Page"] = str(number + 1)
            return 200, items[(number - 1) * size : number * size], headers

        @self.route("GET", f"{base}/repository/commits/(?P<sha>[0-9a-f]+)/merge_requests")
        def commit_merge_requests(request: Request, body: Any, sha: str) -> tuple[int, Any, dict[str, str]]:
            return page(request, self.merge_requests.get(sha, []))

        @self.route("GET", f"{base}/merge_requests/(?P<iid>[0-9]+)/approvals")
        def merge_request_approvals(request: Request, body: Any, iid: str) -> tuple[int, Any]:
            users = [{"user": self.user(name)} for name in self.approved_by[int(iid)]]
            return 200, self.example(
                "DocsMergeRequestApprovals", iid=int(iid), approved=bool(users), approved_by=users, approvals_left=0
            )

        @self.route("GET", f"{base}/repository/commits/(?P<sha>[0-9a-f]+)/statuses")
        def commit_job_statuses(request: Request, body: Any, sha: str) -> tuple[int, Any, dict[str, str]]:
            return page(request, self.job_statuses.get(sha, []))

        @self.route("GET", f"{base}/deployments/(?P<number>[0-9]+)")
        def get_deployment(request: Request, body: Any, number: str) -> tuple[int, Any]:
            deployment = self.deployments[int(number)]
            return 200, {k: v for k, v in deployment.items() if k != "environment_name"}

        @self.route("POST", f"{base}/deployments")
        def create_deployment(request: Request, body: Any) -> tuple[int, Any]:
            number = len(self.deployments) + 1
            deployment = self.example(
                "APIEntitiesDeployment", id=number, iid=number, sha=body["sha"], ref=body["ref"], status=body["status"]
            )
            self.deployments[number] = {**deployment, "environment_name": body["environment"]}
            return 201, deployment

        @self.route("GET", f"{base}/deployments")
        def list_deployments(request: Request, body: Any) -> tuple[int, Any]:
            environment, status = request.args.get("environment"), request.args.get("status")
            chosen = [
                {k: v for k, v in d.items() if k not in ("environment_name", "approvals")}
                for d in sorted(self.deployments.values(), key=lambda d: d["id"], reverse=True)
                if environment in (None, d["environment_name"]) and status in (None, d["status"])
            ]
            return 200, chosen[: int(request.args.get("per_page", "20"))]

        @self.route("PUT", f"{base}/deployments/(?P<number>[0-9]+)")
        def update_deployment(request: Request, body: Any, number: str) -> tuple[int, Any]:
            self.updates.append((int(number), body["status"]))
            deployment = {k: v for k, v in self.deployments[int(number)].items() if k != "environment_name"}
            return 200, {**deployment, "status": body["status"]}

        @self.route("POST", f"{base}/statuses/(?P<sha>[0-9a-f]+)")
        def create_commit_status(request: Request, body: Any, sha: str) -> tuple[int, Any]:
            self.commit_statuses.append({"sha": sha, **body})
            # GitLab's API description documents 200 (not 201) for this create
            return 200, self.example(
                "APIEntitiesCommitStatus", sha=sha, status=body["state"], name=body.get("name", "")
            )

        @self.route("GET", f"{base}/freeze_periods")
        def freeze_periods(request: Request, body: Any) -> tuple[int, Any]:
            return 200, self.freeze_periods

    def add_deployment(self, environment: str, sha: str, status: str, at: str, **extra: Any) -> int:
        number = len(self.deployments) + 1
        deployment = self.example(
            "APIEntitiesDeploymentExtended",
            id=number,
            iid=number,
            sha=sha,
            ref="main",
            status=status,
            created_at=at,
            updated_at=at,
            **extra,
        )
        self.deployments[number] = {**deployment, "environment_name": environment}
        return number

    def user(self, username: str) -> dict[str, Any]:
        return self.example("DocsUser", username=username, name=username.title(), state="active")

    def add_job_deployment(self, environment: str, sha: str, job_id: int, approvals: list[tuple[str, str]]) -> int:
        """The deployment GitLab opens for a job with `environment:` (running while the job runs),
        with the deployment approvals (username, approved|rejected) it collected."""
        return self.add_deployment(
            environment,
            sha,
            "running",
            "2026-11-22T09:00:00Z",
            deployable=self.example("APIEntitiesCiJob", id=job_id, name="promote-dev", status="running"),
            approvals=[
                self.example("APIEntitiesDeploymentsApproval", user=self.user(name), status=status)
                for name, status in approvals
            ],
        )

    def add_merge_request(self, sha: str, iid: int, author: str, approved_by: list[str], state: str = "merged") -> None:
        self.merge_requests.setdefault(sha, []).append(
            self.example(
                "DocsMergeRequestBasic",
                id=1000 + iid,
                iid=iid,
                project_id=42,
                state=state,
                author=self.user(author),
                sha=sha,
                merge_commit_sha=sha,
            )
        )
        self.approved_by[iid] = approved_by

    def add_job_status(self, sha: str, name: str, status: str) -> None:
        statuses = self.job_statuses.setdefault(sha, [])
        statuses.append(
            self.example("APIEntitiesCommitStatus", id=len(statuses) + 1, sha=sha, name=name, status=status)
        )

    def add_freeze(self, start: str, end: str, timezone: str) -> None:
        self.freeze_periods.append(
            self.example(
                "APIEntitiesFreezePeriod",
                id=len(self.freeze_periods) + 1,
                freeze_start=start,
                freeze_end=end,
                cron_timezone=timezone,
            )
        )


def _subject_digests(bundle: dict[str, Any]) -> set[str]:
    """The subject digests of a DSSE bundle's in-toto statement (what GitHub indexes it by)."""
    import base64

    payload = (bundle.get("dsseEnvelope") or {}).get("payload")
    if not payload:
        return set()
    statement = json.loads(base64.b64decode(payload))
    return {str((s.get("digest") or {}).get("sha256")) for s in statement.get("subject", [])}
