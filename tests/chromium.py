"""A real headless Chromium (Debian's `chromium`), driven over the DevTools protocol on a pipe
(`--remote-debugging-pipe`: NUL-separated JSON on file descriptors 3 and 4, so no websocket
client and no port). It loads a page and reports every request the page made (the DevTools
Network domain sees each one, whether or not it could be answered: nothing here answers), every
console message and exception, and what scripts of our own evaluate in the page."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # whatever the page asked for could go nowhere: every name resolves to nothing, and a proxy
    # that does not exist stands in front of everything else
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--remote-debugging-pipe",
)


# The pipe's ends onto fds 3 and 4, then the browser (a shell's redirections take one digit only)
_ONTO_3_AND_4 = """
import fcntl, os, sys
ends = [fcntl.fcntl(int(os.environ[name]), fcntl.F_DUPFD, 10) for name in ("IN", "OUT")]
os.dup2(ends[0], 3)
os.dup2(ends[1], 4)
os.execv(sys.argv[1], sys.argv[1:])
"""


@dataclass
class Loaded:
    requests: list[str] = field(default_factory=list)  # every URL the page requested, the page first
    console: list[str] = field(default_factory=list)  # console messages, log entries, exceptions
    values: dict[str, Any] = field(default_factory=dict)  # expression -> its value in the page


class Chromium:
    def __init__(self, profile: Path) -> None:
        binary = shutil.which("chromium")
        if binary is None:
            pytest.fail("no chromium: run .ci/test-tools")
        to_browser, self._command = os.pipe()
        self._reply, from_browser = os.pipe()
        # the browser reads commands on fd 3 and writes replies on fd 4
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ONTO_3_AND_4, binary, *FLAGS, f"--user-data-dir={profile}"],
            env={**os.environ, "IN": str(to_browser), "OUT": str(from_browser)},
            pass_fds=(to_browser, from_browser),
            stdout=subprocess.DEVNULL,
            stderr=(profile / "chromium.log").open("wb"),
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._command, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(60)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return dict(reply.get("result") or {})
            self.events.append(reply)

    def _receive(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._reply], [], [], left)[0]:
                raise AssertionError("chromium did not answer in time")
            chunk = os.read(self._reply, 1 << 20)
            if not chunk:
                raise AssertionError("chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def wait_for(self, method: str, timeout: float = 60) -> None:
        if any(event.get("method") == method for event in self.events):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self._receive(deadline - time.monotonic())
            self.events.append(event)
            if event.get("method") == method:
                return
        raise AssertionError(f"no {method} from chromium")

    def load(self, url: str, *expressions: str) -> Loaded:
        """Open `url` in a new tab, wait for it to load, and evaluate `expressions` in it."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired")
        loaded = Loaded()
        for expression in expressions:
            result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)[
                "result"
            ]
            loaded.values[expression] = result.get("value")
        time.sleep(0.3)  # anything the page would fetch late
        self.send("Runtime.evaluate", {"expression": "1"}, session=session)  # drain the events
        for event in self.events:
            method, params = event.get("method"), event.get("params") or {}
            if method == "Network.requestWillBeSent":
                loaded.requests.append(params["request"]["url"])
            elif method == "Runtime.consoleAPICalled":
                loaded.console.append(" ".join(str(a.get("value")) for a in params.get("args", [])))
            elif method == "Log.entryAdded":
                loaded.console.append(str(params["entry"].get("text")))
            elif method == "Runtime.exceptionThrown":
                loaded.console.append(str(params["exceptionDetails"].get("text")))
        self.send("Target.closeTarget", {"targetId": target})
        return loaded

    def close(self) -> None:
        with contextlib.suppress(AssertionError):  # it may be gone already
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._command)
        os.close(self._reply)
