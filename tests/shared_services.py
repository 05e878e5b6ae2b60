"""The servers a test run's xdist workers share: one PostgreSQL, one MariaDB, one Unleash per run,
not one per worker. Why: CPU budget. Four workers on two cores kept the cores ~91% busy; each
Unleash cost 3.9 s of CPU to start and ~2.7% of a core idle for the whole run, each database
~0.9 s to start, four times over.

How: the run's records live in a directory the controller names (outside pytest's basetemp, which
pytest removes at the end of a run that passed), hands each worker, and the first service started
makes. The first test that asks for a service starts it, under an flock (a lock
dies with its holder: a crashed worker never leaves it held), and records how to reach and stop
it BEFORE waiting for it to answer; later askers, in any worker, attach to the record. No worker
stops a service: the first to finish would pull it from under the others. With the first service
a watchdog starts (tests/service_watchdog.py, in a session of its own: a terminal's Ctrl-C does
not reach it) that sleeps until the controller process (the one pytest started; with `-n 0` the
only one) has exited, however it ended (a crash, Ctrl-C at any moment, SIGKILL), then stops every
recorded service and removes the records (moved aside first, in one step: a straggling worker
finds none and starts afresh, with a watchdog of its own that finds the controller gone and stops
at once; if a stop failed, the records stay, with the watchdog's log). A record left
half-started by a worker that died mid-start is stopped by the next starter. A run that asks for
no service starts none, and no watchdog.

Sharing is safe because every test makes what it changes under a name of its own
(`unique_name`: the worker id, which xdist never reuses in a run, and a per-process number) and
creates it without IF NOT EXISTS, so a repeated name would fail loudly instead of two tests
silently sharing a database; a test that changes the whole server says how it keeps out of the
others' way where it does so."""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

import pytest

KEY = "pipeline_kit_controller"  # the controller's pid, in each worker's workerinput
RECORDS = "pipeline_kit_services"  # the run's records directory, in each worker's workerinput
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")  # gw0, gw1, ...; a crashed worker's successor gets a new id
_NUMBERS = itertools.count()


def unique_name(prefix: str) -> str:
    """A database (or role, or flag) name no other test of the run makes, in any worker."""
    return f"{prefix}_{WORKER}_{next(_NUMBERS)}"


class Service(Protocol):
    """A server the run shares: `state()` is all another process needs to reach or stop it."""

    @classmethod
    def attach(cls, state: dict[str, Any]) -> Self: ...

    def state(self) -> dict[str, Any]: ...

    def start(self) -> Self: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Service)


@contextmanager
def locked(path: Path, shared: bool = False, timeout: float | None = None) -> Iterator[bool]:
    """An flock on `path` (shared or exclusive) for the block; with `timeout`, gives up after
    that many seconds and yields False instead of waiting on."""
    with path.open("a") as handle:
        kind = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, kind | (0 if deadline is None else fcntl.LOCK_NB))
            except BlockingIOError:
                if deadline is not None and time.monotonic() > deadline:
                    yield False
                    return
                time.sleep(0.1)
                continue
            yield True
            return  # closing the file releases the lock


class Services:
    """The run's shared services, recorded in `directory` (one `<name>.json` each), stopped once
    the process `controller` has exited."""

    def __init__(self, directory: Path, controller: int) -> None:
        self.directory = directory
        self.controller = controller

    @staticmethod
    def directory_for(controller: int) -> Path:
        """Where the run of process `controller` will record its services: made by the first
        service started (a run that starts none, however it ends, leaves nothing behind)."""
        return Path(tempfile.gettempdir()) / f"pipeline-kit-test-services-{controller}-{secrets.token_hex(8)}"

    def forget_if_unused(self) -> None:
        """Removes the records if no service was started (nor a watchdog, which removes them)."""
        if not self.directory.is_dir():
            return
        with locked(self.directory / "watchdog.lock"):
            if (self.directory / "watchdog.pid").exists():
                return
            gone = self._bury()
        shutil.rmtree(gone, ignore_errors=True)

    def _bury(self) -> Path:
        """The records moved aside in one step before their removal: a straggling worker finds
        none (and the next it makes has a watchdog of its own), never half of them."""
        gone = self.directory.with_name(self.directory.name + ".removed")
        os.rename(self.directory, gone)
        return gone

    def get(self, name: str, kind: type[S]) -> S:
        """The run's `name` service: started now if no worker started it yet."""
        record = self.directory / f"{name}.json"
        self.directory.mkdir(mode=0o700, exist_ok=True)
        with locked(self.directory / f"{name}.lock"):
            found = json.loads(record.read_text()) if record.exists() else None
            if found and found.get("closed"):
                pytest.fail(f"the run is over (its controller exited): no {name} is started for it")
            if found and found["ready"]:
                return kind.attach(found["state"])
            if found:
                kind.attach(found["state"]).stop()  # its starter died half-way
            self._watch()
            instance = kind()
            _write(record, {"state": instance.state(), "ready": False})  # stoppable from here on
            instance.start()
            _write(record, {"state": instance.state(), "ready": True})
            return instance

    def _watch(self) -> None:
        """The run's watchdog, started once (tests/service_watchdog.py)."""
        with locked(self.directory / "watchdog.lock"):
            if (self.directory / "watchdog.pid").exists():
                return
            with (self.directory / "watchdog.log").open("ab") as log:
                watchdog = subprocess.Popen(
                    [sys.executable, "-m", "tests.service_watchdog", str(self.directory), str(self.controller)],
                    cwd=Path(__file__).resolve().parents[1],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            (self.directory / "watchdog.pid").write_text(str(watchdog.pid))

    def stop_all(self, kinds: dict[str, type[Service]]) -> list[str]:
        """Stops every recorded service and closes it for the run, then removes the records unless a
        stop failed (its log stays with them); what failed."""
        failures = []
        for name, kind in kinds.items():
            record = self.directory / f"{name}.json"
            # a worker still starting it (a straggler) finishes recording first
            with locked(self.directory / f"{name}.lock", timeout=120):
                found = json.loads(record.read_text()) if record.exists() else {}
                if "state" in found:
                    try:
                        kind.attach(found["state"]).stop()
                    except Exception as exc:  # report, and stop the others all the same
                        failures.append(f"stopping the shared {name}: {exc}")
                _write(record, {"closed": True})
        if not failures:
            shutil.rmtree(self._bury(), ignore_errors=True)
        return failures


def _write(path: Path, content: object) -> None:
    """Whole or not at all: a reader never sees half a record."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(content))
    os.replace(partial, path)


def wait_for_exit(pid: int) -> None:
    """Sleeps (no polling) until process `pid` has exited."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([handle], [], [])  # readable once the process is gone
    finally:
        os.close(handle)


def record_pid(root: Path, pid: int) -> None:
    """Where `end_recorded` finds the server a process other than its starter stops."""
    (root / "pid").write_text(str(pid))


def end_recorded(root: Path, timeout: float = 30) -> None:
    """Kills the process `record_pid` recorded in `root` (SIGKILL: its data is thrown away, a
    graceful shutdown would only cost time), if it still runs in `root` (its working directory
    is there: a pid reused since is left alone); waits at most `timeout` s for it to end."""
    try:
        pid = int((root / "pid").read_text())
    except (OSError, ValueError):
        return  # never started
    deadline = time.monotonic() + timeout
    if runs_in(pid, root):
        os.kill(pid, signal.SIGKILL)
    while runs_in(pid, root):
        if time.monotonic() > deadline:
            raise RuntimeError(f"process {pid} ({root}) outlived SIGKILL by {timeout} s")
        time.sleep(0.02)


def runs_in(pid: int, root: Path) -> bool:
    """Whether `pid` is alive (not a zombie) with its working directory under `root`."""
    with suppress(ChildProcessError):  # reaps it if it is this process's child (a run without xdist)
        os.waitpid(pid, os.WNOHANG)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except (OSError, IndexError):
        return False
    return state != "Z" and Path(cwd).is_relative_to(root)
