"""A real Prometheus (Debian's `prometheus` and `promtool`) on 127.0.0.1, for the metric gates and
the analysis: either backfilled with known series (exact, deterministic answers at a fixed
`time=`), or scraping a live exporter the test controls."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ready(url: str, within: float = 20) -> bool:
    """Whether `url`/-/ready (Prometheus's, the Pushgateway's) answers 200 within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass(frozen=True)
class Traffic:
    """A release serving `rps` requests a second, `error_ratio` of them 5xx, over the data's span."""

    release: str
    rps: float
    error_ratio: float


@dataclass(frozen=True)
class Latency:
    """A release's `request_latency_seconds` gauge: `median` with a deterministic spread of
    +-`spread` (a repeating pattern, so a test knows every value)."""

    release: str
    median: float
    spread: float


def openmetrics(
    series: Iterable[Traffic], start: int, end: int, step: int = 15, latencies: Iterable[Latency] = ()
) -> str:
    """Counters `http_requests_total{release, code}` for each release, and latency gauges, as
    promtool backfills them."""
    lines = []
    pattern = (-1.0, -0.5, 0.0, 0.5, 1.0, 0.25, -0.25)
    latency = list(latencies)
    if latency:
        lines.append("# TYPE request_latency_seconds gauge")
    for gauge in latency:
        for i, t in enumerate(range(start, end + 1, step)):
            value = gauge.median + gauge.spread * pattern[i % len(pattern)]
            lines.append(f'request_latency_seconds{{release="{gauge.release}"}} {value:.6f} {t}')
    lines.append("# TYPE http_requests counter")
    for traffic in series:
        for code, share in (("200", 1 - traffic.error_ratio), ("500", traffic.error_ratio)):
            for t in range(start, end + 1, step):
                value = traffic.rps * share * (t - start)
                lines.append(f'http_requests_total{{release="{traffic.release}",code="{code}"}} {value:.6f} {t}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


class LocalPrometheus:
    def __init__(self, root: Path, scrape: str | None = None, *, honor_labels: bool = False) -> None:
        """`scrape`: a target to scrape every second; `honor_labels`: its samples keep their own
        `job` and other labels (a Pushgateway's, which says whose metrics they are)."""
        for tool in ("prometheus", "promtool"):
            if shutil.which(tool) is None:
                pytest.fail(f"{tool} is not installed: run .ci/test-tools (Debian package prometheus)")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        scrape_configs = "[]"
        if scrape:
            scrape_configs = (
                f"\n  - job_name: app\n    scrape_interval: 1s\n    honor_labels: {str(honor_labels).lower()}"
                f"\n    static_configs:\n      - targets: ['{scrape}']"
            )
        (root / "prometheus.yml").write_text(f"global: {{scrape_interval: 1s}}\nscrape_configs: {scrape_configs}\n")
        self.process: subprocess.Popen[bytes] | None = None

    def backfill(self, text: str) -> None:
        source = self.root / "series.om"
        source.write_text(text)
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(self.data)],
            check=True,
            capture_output=True,
        )

    def start(self) -> LocalPrometheus:
        self.process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={self.root / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "prometheus.log").open("wb"),
        )
        if ready(self.url):
            return self
        self.stop()
        raise RuntimeError(f"prometheus did not become ready: {(self.root / 'prometheus.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class Exporter:
    """The service's /metrics: `http_requests_total{release, code}` for the release deployed now
    (the deploy command writes its id to `deployed`), 50 requests a second, the error ratio the
    test set for that release. The 500 series exists from the start at 0 for a healthy release."""

    def __init__(self, deployed: Path) -> None:
        self.deployed = deployed
        self.ratios: dict[str, float] = {}
        self.latency: dict[str, float] = {}  # release -> median latency, exported for each with jitter
        self.scrapes = 0
        self.counts: dict[tuple[str, str], float] = {}
        self.last = time.monotonic()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = exporter.scrape().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.target = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def scrape(self) -> str:
        now = time.monotonic()
        elapsed, self.last = now - self.last, now
        release = self.deployed.read_text().strip() if self.deployed.is_file() else ""
        if release:
            ratio = self.ratios.get(release, 0.0)
            for code, share in (("200", 1 - ratio), ("500", ratio)):
                key = (release, code)
                self.counts[key] = self.counts.get(key, 0.0) + 50 * share * elapsed
        lines = ["# TYPE http_requests_total counter"]
        lines += [
            f'http_requests_total{{release="{release}",code="{code}"}} {value}'
            for (release, code), value in sorted(self.counts.items())
        ]
        self.scrapes += 1
        jitter = (-1.0, -0.5, 0.0, 0.5, 1.0)[self.scrapes % 5]
        lines.append("# TYPE request_latency_seconds gauge")
        lines += [
            f'request_latency_seconds{{release="{release}"}} {median * (1 + 0.1 * jitter)}'
            for release, median in sorted(self.latency.items())
        ]
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        self.server.shutdown()
