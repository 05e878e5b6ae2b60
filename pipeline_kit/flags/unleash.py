"""Kill switches on an Unleash server, through its admin API, per environment:
`POST /api/admin/projects/{project}/features/{flag}/environments/{environment}/off` (and `/on`
to restore). The admin token comes from a named environment variable, sent as the
`Authorization` header Unleash expects; any answer but 200 is a failure naming the status."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

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
        request = urllib.request.Request(  # noqa: S310 - http(s) only: the config's url pattern
            f"{self.url}/{path}", method="POST", headers={"Authorization": self.token, "Accept": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                response.read(1 << 16)
        except urllib.error.HTTPError as exc:
            raise EnvironmentFailure(f"unleash: turning {flag} {state} in {target} failed: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise EnvironmentFailure(f"unleash: turning {flag} {state} in {target} failed: {reason}") from exc
        return f"{flag} {state} in Unleash environment {target} (project {self.project})"

    def kill(self, flag: str, environment: str) -> str:
        return self._switch(flag, environment, "off")

    def restore(self, flag: str, environment: str) -> str:
        return self._switch(flag, environment, "on")
