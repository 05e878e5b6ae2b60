"""A real MariaDB (Debian's mariadb-server) on 127.0.0.1, for checking the MySQL-dialect migration
classifier against what the database does to an old release, and what InnoDB's online DDL allows.
Shared by a run's workers (tests/shared_services.py): `state()` and `attach` let any process
reach it, and the server's pid is recorded for whichever process stops it."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.prometheus_instance import free_port
from tests.shared_services import end_recorded, record_pid

SERVER = Path("/usr/sbin/mariadbd")


class LocalMariaDB:
    def __init__(self, root: Path | None = None, port: int | None = None) -> None:
        if not SERVER.exists() or shutil.which("mariadb-install-db") is None or shutil.which("mariadb") is None:
            pytest.fail("MariaDB is not installed (Debian package mariadb-server; run .ci/test-tools)")
        self.root = root or Path(tempfile.mkdtemp(prefix="pipeline-kit-mariadb-"))
        self.port = port or free_port()
        self.data = self.root / "data"
        self.socket = self.root / "mariadb.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def state(self) -> dict[str, Any]:
        return {"root": str(self.root), "port": self.port}

    @classmethod
    def attach(cls, state: dict[str, Any]) -> LocalMariaDB:
        return cls(Path(state["root"]), int(state["port"]))

    def start(self) -> LocalMariaDB:
        user = pwd.getpwuid(os.geteuid()).pw_name  # the server runs as whoever runs the tests
        subprocess.run(
            [
                *("mariadb-install-db", "--no-defaults", f"--datadir={self.data}", f"--user={user}"),
                *("--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"),
            ],
            check=True,
            capture_output=True,
        )
        self.process = subprocess.Popen(
            [
                *(str(SERVER), "--no-defaults", f"--datadir={self.data}", f"--socket={self.socket}"),
                *(f"--port={self.port}", "--bind-address=127.0.0.1", f"--user={user}", "--skip-log-bin"),
                *("--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=32M", "--skip-name-resolve"),
                f"--log-error={self.root / 'log'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        record_pid(self.root, self.process.pid)
        deadline = time.monotonic() + 30
        while self.sql("", "SELECT 1").returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.root / "log").read_text(errors="replace") if (self.root / "log").exists() else ""
                self.stop()
                pytest.fail(f"MariaDB did not start: {log[-2000:]}")
            time.sleep(0.1)
        return self

    def client(self, database: str, sql: str, user: str = "root") -> list[str]:
        """The `mariadb` client's argv running `sql` as `user` (root over the socket, others over TCP)."""
        where = [f"--socket={self.socket}"] if user == "root" else ["-h", "127.0.0.1", f"--port={self.port}"]
        return ["mariadb", "--no-defaults", *where, "-u", user, "--batch", *([database] if database else []), "-e", sql]

    def sql(self, database: str, sql: str, user: str = "root") -> subprocess.CompletedProcess[str]:
        """`sql` run by the `mariadb` client as `user`, waited for."""
        return subprocess.run(self.client(database, sql, user), capture_output=True, text=True, check=False, timeout=60)

    def session(self, database: str, sql: str) -> subprocess.Popen[str]:
        """`sql` run by the `mariadb` client as root in a session of its own, not waited for (a
        lock holder, or a statement that queues behind one)."""
        return subprocess.Popen(self.client(database, sql), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self) -> None:
        end_recorded(self.root)
        shutil.rmtree(self.root, ignore_errors=True)
