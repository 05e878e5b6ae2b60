"""A real PostgreSQL (Debian's) on 127.0.0.1, run as the postgres user (initdb refuses root),
for checking the migration classifier against what the database does to an old release. Shared
by a run's workers (tests/shared_services.py): `state()` and `attach` let any process reach it and
`stop()` needs only its data directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.prometheus_instance import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


class LocalPostgres:
    def __init__(self, root: Path | None = None, port: int | None = None) -> None:
        if not (BIN / "initdb").exists() or shutil.which("psql") is None:
            pytest.fail("PostgreSQL 15 is not installed (Debian package postgresql)")
        self.root = root or Path(tempfile.mkdtemp(prefix="pipeline-kit-pg-"))
        self.port = port or free_port()
        self.data = self.root / "data"

    def state(self) -> dict[str, Any]:
        return {"root": str(self.root), "port": self.port}

    @classmethod
    def attach(cls, state: dict[str, Any]) -> LocalPostgres:
        return cls(Path(state["root"]), int(state["port"]))

    def _as_postgres(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *command], check=check, capture_output=True)

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
        """Stops the server if it runs (a start cut short may have left none) and removes its files."""
        if (self.data / "postmaster.pid").exists():
            done = self._as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", check=False)
            if (self.data / "postmaster.pid").exists():
                raise RuntimeError(f"pg_ctl stop failed: {done.stderr.decode(errors='replace').strip()}")
        shutil.rmtree(self.root, ignore_errors=True)
