"""Kill switches on an Unleash server, through its admin API, per environment (checked against a
real unleash-server in the tests; docs/flags.md).

A kill reads the flag's state in the environment (`GET /api/admin/projects/{project}/features/
{flag}/environments/{env}`), switches it off (`POST .../off`), reads it again (a 200 from something
that is not Unleash, a proxy's page say, is no kill), then tags the flag `simple:pipeline-kit-off:
{env}`. Unleash keeps no "state before", so the tag is how `restore` turns back on only what the
kit turned off: a flag that was already off is left as it was, untagged, and its restore refused.
The switch comes before the tag: in an incident the flag off matters more than the marker.

The admin token (an admin API token or a personal access token) comes from a named environment
variable and is sent as the raw `Authorization` header Unleash reads; it is never printed. Any
other answer is a failure naming the status and Unleash's own message (a redirect included: never
followed, the token would go with it); each call has a total deadline.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from typing import Any

from pipeline_kit._internal.http import HttpProblem, request
from pipeline_kit.errors import EnvironmentFailure, UsageError
from pipeline_kit.flags.interface import KillSwitches

TAG_TYPE = "simple"  # the tag type every Unleash has
TAG_PREFIX = "pipeline-kit-off:"
TAG_MAX = 50  # Unleash's longest tag value
MAX_ANSWER = 1 << 20


class Unleash(KillSwitches):
    kind = "unleash"

    def __init__(self, url: str, project: str, token: str, environments: dict[str, str], timeout: float = 10) -> None:
        self.url = url.rstrip("/")
        self.project = project
        self.token = token
        self.environments = environments
        self.timeout = timeout

    def kill(self, flag: str, environment: str) -> str:
        target = self.environments.get(environment, environment)
        where = f"Unleash environment {target} (project {self.project})"
        if not self._enabled(flag, target):
            if _tag(target) in self._tags(flag):
                return f"{flag} already off in {where} (turned off by pipeline-kit)"
            return f"{flag} already off in {where}, not by pipeline-kit: a restore will leave it off"
        self._switch(flag, target, on=False)
        try:
            self._call("POST", ("features", flag, "tags"), f"marking {flag}", {"type": TAG_TYPE, "value": _tag(target)})
        except EnvironmentFailure as exc:  # the flag is off: say so, and why restore will refuse
            return f"{flag} off in {where}; {exc.message}: restore it in Unleash by hand"
        return f"{flag} off in {where} (tagged {TAG_TYPE}:{_tag(target)})"

    def restore(self, flag: str, environment: str) -> str:
        target = self.environments.get(environment, environment)
        where = f"Unleash environment {target} (project {self.project})"
        already = self._enabled(flag, target)  # first: names a flag or environment the project lacks
        if _tag(target) not in self._tags(flag):
            raise UsageError(
                f"{flag} in {where} was not turned off by pipeline-kit (no tag {TAG_TYPE}:{_tag(target)}): "
                "nothing to restore"
            )
        if not already:
            self._switch(flag, target, on=True)
        self._call("DELETE", ("features", flag, "tags", TAG_TYPE, _tag(target)), f"unmarking {flag}")
        return f"{flag} {'already on' if already else 'on'} in {where} (tag {TAG_TYPE}:{_tag(target)} removed)"

    def _switch(self, flag: str, target: str, *, on: bool) -> None:
        state = "on" if on else "off"
        self._call("POST", (*self._environment(flag, target), state), f"turning {flag} {state} in {target}")
        if self._enabled(flag, target) is not on:
            raise EnvironmentFailure(f"unleash: turning {flag} {state} in {target}: answered, yet it is not {state}")

    def _enabled(self, flag: str, target: str) -> bool:
        answer = self._call("GET", self._environment(flag, target), f"reading {flag} in {target}")
        if not isinstance(answer, dict) or answer.get("name") != flag or not isinstance(answer.get("enabled"), bool):
            raise EnvironmentFailure(f"unleash: reading {flag} in {target}: not an Unleash answer (no enabled state)")
        return bool(answer["enabled"])

    def _tags(self, flag: str) -> set[str]:
        answer = self._call("GET", ("features", flag, "tags"), f"reading the tags of {flag}")
        tags = answer.get("tags") if isinstance(answer, dict) else None
        if not isinstance(tags, list):
            raise EnvironmentFailure(f"unleash: reading the tags of {flag}: not an Unleash answer (no tags)")
        return {str(t.get("value")) for t in tags if isinstance(t, dict) and t.get("type") == TAG_TYPE}

    def _environment(self, flag: str, target: str) -> tuple[str, ...]:
        return ("projects", self.project, "features", flag, "environments", target)

    def _call(self, method: str, parts: tuple[str, ...], what: str, body: object = None) -> Any:
        """The JSON answer (None when empty) of `method` on /api/admin/{parts}; raises
        EnvironmentFailure on anything but a 2xx, naming the status and Unleash's message."""
        path = "/".join(urllib.parse.quote(part, safe="") for part in parts)
        headers = {"Authorization": self.token, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            answer = request(
                method,
                f"{self.url}/api/admin/{path}",
                deadline=self.timeout,
                max_bytes=MAX_ANSWER,
                body=data,
                headers=headers,
            )
        except HttpProblem as exc:
            raise EnvironmentFailure(f"unleash: {what} failed: {exc}") from None
        if not 200 <= answer.status < 300:
            raise EnvironmentFailure(
                f"unleash: {what} failed: HTTP {answer.status}{_message(answer.body)}",
                hint="check the admin token in flags.token-variable" if answer.status in (401, 403) else None,
            )
        try:
            return json.loads(answer.body) if answer.body.strip() else None
        except (ValueError, RecursionError):  # nested past the parser's depth: a hostile answer
            raise EnvironmentFailure(f"unleash: {what}: the answer is not JSON (is the URL Unleash's?)") from None


def _tag(target: str) -> str:
    """The tag value marking `target` as turned off by the kit, within Unleash's 50 characters."""
    value = TAG_PREFIX + target
    if len(value) <= TAG_MAX:
        return value
    return TAG_PREFIX + hashlib.sha256(target.encode()).hexdigest()[: TAG_MAX - len(TAG_PREFIX)]


def _message(body: bytes) -> str:
    """Unleash's own error message (`{"message": ...}`), one printable line, or nothing."""
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError, RecursionError):
        return ""
    if not isinstance(message, str) or not message.strip():
        return ""
    return ": " + "".join(ch if ch.isprintable() else " " for ch in message)[:200]
