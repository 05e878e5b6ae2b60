"""A real PostgreSQL (Debian's) on 127.0.0.1, run as the postgres user (initdb refuses root),
for checking the migration classifier against what the database does to an old release."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.prometheus_instance import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


class LocalPostgres:
    def __init__(self) -> None:
        if not (BIN / "initdb").exists() or shutil.which("psql") is None:
            pytest.fail("PostgreSQL 15 is not installed (Debian package postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="pipeline-kit-pg-"))
        self.port = free_port()
        self.data = self.root / "data"

    def _as_postgres(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True)

    def start(self) -> LocalPostgres:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._as_postgres(str(BIN / "initdb"), "-D", str(self.data), "--no-sync", "-A", "trust", "-U", "postgres")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            str(BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-l", str(self.root / "log"), "start"
        )
        return self

    def psql(self, database: str, sql: str, user: str = "postgres") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", user, "-d", database),
                *("-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql),
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    def stop(self) -> None:
        self._as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
