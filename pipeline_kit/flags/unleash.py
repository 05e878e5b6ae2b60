"""Kill switches on an Unleash server, through its admin API, per environment:
`POST /api/admin/projects/{project}/features/{flag}/environments/{environment}/off` (and `/on`
to restore). The admin token comes from a named environment variable, sent as the
`Authorization` header Unleash expects; any answer but 200 (a redirect included: never followed,
the token would go with it) is a failure naming the status, and each call has a total deadline."""

from __future__ import annotations

import urllib.parse

from pipeline_kit._internal.http import HttpProblem, request
from pipeline_kit.errors import EnvironmentFailure
from pipeline_kit.flags.interface import KillSwitches


class Unleash(KillSwitches):
    kind = "unleash"

    def __init__(self, url: str, project: str, token: str, environments: dict[str, str], timeout: float = 10) -> None:
        self.url = url.rstrip("/")
        self.project = project
        self.token = token
        self.environments = environments
        self.timeout = timeout

    def _switch(self, flag: str, environment: str, state: str) -> str:
        target = self.environments.get(environment, environment)
        path = "/".join(
            urllib.parse.quote(part, safe="")
            for part in ("api", "admin", "projects", self.project, "features", flag, "environments", target, state)
        )
        headers = {"Authorization": self.token, "Accept": "application/json"}
        try:
            answer = request("POST", f"{self.url}/{path}", deadline=self.timeout, max_bytes=1 << 16, headers=headers)
        except HttpProblem as exc:
            raise EnvironmentFailure(f"unleash: turning {flag} {state} in {target} failed: {exc}") from None
        if answer.status != 200:
            raise EnvironmentFailure(f"unleash: turning {flag} {state} in {target} failed: HTTP {answer.status}")
        return f"{flag} {state} in Unleash environment {target} (project {self.project})"

    def kill(self, flag: str, environment: str) -> str:
        return self._switch(flag, environment, "off")

    def restore(self, flag: str, environment: str) -> str:
        return self._switch(flag, environment, "on")
