"""A real nginx (Debian) on 127.0.0.1 in front of small backends that answer with the release they
run: a rollout's traffic provider, measured by counting who answered."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.prometheus_instance import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Backend:
    """Answers every request with the release its slot runs: the content of `deployed`, which the
    deploy command writes (`none` before any deploy)."""

    def __init__(self, deployed: Path) -> None:
        self.deployed = deployed
        backend = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # or every request behind keep-alive costs ~40 ms
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = (backend.deployed.read_text().strip() if backend.deployed.is_file() else "none").encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LocalNginx:
    """nginx -p DIR in the foreground, proxying to the upstream block in `upstream_file`."""

    def __init__(self, root: Path, upstream_file: Path) -> None:
        if not Path(NGINX).exists():
            pytest.fail("nginx is not installed: run .ci/test-tools (Debian package nginx)")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        temp = "\n".join(
            f"    {kind}_temp_path {root}/{kind}_temp;" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (root / "nginx.conf").write_text(
            f"""worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
{temp}
    include {upstream_file};
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://pipeline_kit;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
        )
        self.base = [NGINX, "-p", str(root), "-c", str(root / "nginx.conf")]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def test_command(self) -> list[str]:
        return [*self.base, "-t", "-q", "-e", str(self.root / "error.log")]

    @property
    def reload_command(self) -> list[str]:
        return [*self.base, "-s", "reload", "-e", str(self.root / "error.log")]

    def start(self) -> LocalNginx:
        self.process = subprocess.Popen(
            [*self.base, "-e", "stderr", "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=1):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("nginx did not start")

    def count(self, requests: int) -> Counter[str]:
        """Who answered `requests` requests, each on a new connection; failures counted as `failed`."""
        answers: Counter[str] = Counter()
        for _ in range(requests):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    answers[response.read().decode()] += 1
            except OSError:
                answers["failed"] += 1
        return answers

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
