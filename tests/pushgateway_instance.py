"""A real Pushgateway (Debian's `prometheus-pushgateway`) on 127.0.0.1, scraped every second by a
real Prometheus (tests/prometheus_instance.py): what the kit pushes is read back with PromQL."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.prometheus_instance import LocalPrometheus, free_port, ready


class LocalPushgateway:
    def __init__(self, root: Path) -> None:
        if shutil.which("prometheus-pushgateway") is None:
            pytest.fail("prometheus-pushgateway is not installed: run .ci/test-tools (Debian package)")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.prometheus = LocalPrometheus(root / "prometheus", scrape=f"127.0.0.1:{self.port}", honor_labels=True)

    def start(self) -> LocalPushgateway:
        self.process = subprocess.Popen(
            [
                "prometheus-pushgateway",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--persistence.file={self.root / 'pushgateway.data'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "pushgateway.log").open("wb"),
        )
        if not ready(self.url):
            self.stop()
            raise RuntimeError(f"pushgateway did not start: {(self.root / 'pushgateway.log').read_text()[-2000:]}")
        self.prometheus.start()
        return self

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector Prometheus answers for `promql` now."""
        url = f"{self.prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            answer = json.loads(response.read())
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def until(self, promql: str, expected: int = 1, within: float = 20) -> list[dict[str, Any]]:
        """`query(promql)` once it has `expected` series (the next scrapes bring a push)."""
        deadline = time.monotonic() + within
        while True:
            found = self.query(promql)
            if len(found) == expected or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def stop(self) -> None:
        self.prometheus.stop()
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
