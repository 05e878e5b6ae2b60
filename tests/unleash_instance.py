"""A real Unleash (npm unleash-server, installed by .ci/test-tools into .ci/tools/unleash) on
127.0.0.1, on a database of its own in a local PostgreSQL (tests/postgres_instance.py), started
once per test run and shared by its workers (tests/shared_services.py). Its API tokens are made at start from the environment (INIT_ADMIN_API_TOKENS,
INIT_BACKEND_API_TOKENS), random per session. The helpers here talk to the admin API with urllib,
not through the kit (they are the oracle), and read a flag as an application does: through
Unleash's Python SDK (UnleashClient) with a backend token of the environment."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.postgres_instance import LocalPostgres
from tests.prometheus_instance import free_port
from tests.shared_services import end_recorded, record_pid

SERVER = Path(__file__).resolve().parents[1] / ".ci/tools/unleash/node_modules/unleash-server/dist/server.js"
ENVIRONMENTS = ("development", "production")  # the two an Unleash starts with
STARTUP = 90.0  # seconds: the first start runs every migration on an empty database


class LocalUnleash:
    def __init__(self, state: dict[str, Any] | None = None) -> None:
        if not SERVER.is_file() or shutil.which("node") is None:
            pytest.fail("unleash-server is not installed: run .ci/test-tools")
        self.root = Path(state["root"]) if state else Path(tempfile.mkdtemp(prefix="pipeline-kit-unleash-"))
        self.port = int(state["port"]) if state else free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = str(state["admin_token"]) if state else f"*:*.{secrets.token_hex(16)}"
        self.client_tokens: dict[str, str] = (
            dict(state["client_tokens"])
            if state
            else {env: f"default:{env}.{secrets.token_hex(16)}" for env in ENVIRONMENTS}
        )
        self.postgres = LocalPostgres.attach(state["postgres"]) if state else LocalPostgres()
        self.started_in = 0.0  # seconds, PostgreSQL included

    def state(self) -> dict[str, Any]:
        """All another worker needs to use it (its tokens too: the files are the run's own, under /tmp)."""
        return {
            "root": str(self.root),
            "port": self.port,
            "admin_token": self.admin_token,
            "client_tokens": self.client_tokens,
            "postgres": self.postgres.state(),
        }

    @classmethod
    def attach(cls, state: dict[str, Any]) -> LocalUnleash:
        return cls(state)

    def start(self) -> LocalUnleash:
        began = time.monotonic()
        self.postgres.start()
        created = self.postgres.psql("postgres", "CREATE DATABASE unleash")
        assert created.returncode == 0, created.stderr
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.root),
            "TZ": "UTC",
            "NODE_ENV": "production",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.postgres.port}/unleash",
            "DATABASE_SSL": "false",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.port),
            "CHECK_VERSION": "false",  # no calls home
            "SEND_TELEMETRY": "false",
            "LOG_LEVEL": "warn",
            "UNLEASH_DEFAULT_ADMIN_PASSWORD": secrets.token_hex(16),
            "INIT_ADMIN_API_TOKENS": self.admin_token,
            "INIT_BACKEND_API_TOKENS": ",".join(self.client_tokens.values()),
        }
        with (self.root / "log").open("wb") as log:
            process = subprocess.Popen(
                ["node", str(SERVER)],
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        record_pid(self.root, process.pid)
        deadline = time.monotonic() + STARTUP
        while self.admin("GET", "/api/admin/environments", expect=None)[0] != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                log_tail = (self.root / "log").read_text(errors="replace")[-3000:]
                self.stop()
                pytest.fail(f"unleash-server did not start: {log_tail}")
            time.sleep(0.1)
        self.started_in = time.monotonic() - began
        return self

    def stop(self) -> None:
        end_recorded(self.root)
        self.postgres.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def admin(self, method: str, path: str, body: object = None, expect: int | None = 200) -> tuple[int, Any]:
        """One admin API call with the admin token; the status and the JSON answer."""
        data = json.dumps(body).encode() if body is not None else None
        call = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        call.add_header("Authorization", self.admin_token)
        call.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(call, timeout=10) as answer:
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except OSError:
            status, raw = 0, b""
        if expect is not None:
            assert status == expect, f"{method} {path}: HTTP {status} {raw[:300]!r}"
        try:
            return status, json.loads(raw) if raw.strip() else None
        except ValueError:  # not JSON (a server still starting, or not Unleash)
            return status, raw.decode(errors="replace")

    def create_flag(self, on_in: tuple[str, ...] = (), beta_only: bool = False) -> str:
        """A new kill-switch flag (a name of its own: the server is shared by the session), on in
        `on_in`; with `beta_only`, on there only for the context property tier=beta."""
        name = f"new-checkout-{secrets.token_hex(4)}"
        base = "/api/admin/projects/default/features"
        self.admin("POST", base, {"name": name, "type": "kill-switch"}, expect=201)
        for env in on_in:
            if beta_only:
                strategy = {
                    "name": "flexibleRollout",
                    "constraints": [{"contextName": "tier", "operator": "IN", "values": ["beta"]}],
                    "parameters": {"rollout": "100", "stickiness": "default", "groupId": name},
                }
                self.admin("POST", f"{base}/{name}/environments/{env}/strategies", strategy)
            self.admin("POST", f"{base}/{name}/environments/{env}/on")
        return name

    def enabled(self, flag: str, env: str) -> bool:
        """What the admin API says of `flag` in `env` (the server's own record)."""
        state = self.admin("GET", f"/api/admin/projects/default/features/{flag}/environments/{env}")[1]
        return bool(state["enabled"])

    def tags(self, flag: str) -> list[str]:
        return [f"{t['type']}:{t['value']}" for t in self.admin("GET", f"/api/admin/features/{flag}/tags")[1]["tags"]]

    def seen_by_app(self, flag: str, env: str, expected: bool, **context: str) -> bool:
        """The flag as an application in `env` sees it through Unleash's Python SDK, read again
        until it is `expected` or 10 s passed (the server publishes a change to clients within
        about a second); returns the last value seen."""
        from UnleashClient import UnleashClient  # type: ignore[attr-defined]  # the documented import; no __all__

        deadline = time.monotonic() + 10
        while True:
            client = UnleashClient(
                url=f"{self.url}/api",
                app_name="checkout-service",
                environment=env,
                custom_headers={"Authorization": self.client_tokens[env]},
                disable_metrics=True,
                disable_registration=True,
                cache_directory=tempfile.mkdtemp(dir=self.root),
            )
            client.initialize_client(fetch_toggles=True)
            try:
                # a flag the client does not know falls back to the opposite of what is expected
                seen = bool(client.is_enabled(flag, {"properties": context}, fallback_function=lambda *_: not expected))
            finally:
                client.destroy()
            if seen is expected or time.monotonic() > deadline:
                return seen
            time.sleep(0.2)
