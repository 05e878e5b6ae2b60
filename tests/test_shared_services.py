"""The run's shared servers (tests/shared_services.py), checked on a real run of pytest with two
xdist workers, one of which crashes: one server for both, a name no two workers make, a repeated
name refused by the server (not shared), and the server stopped once the run is over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT
from tests.shared_services import runs_in

PROBE = """
import json, os
from pathlib import Path
from tests.shared_services import WORKER, unique_name

def test_probe(postgres_server, services):
    out = Path(os.environ["PROBE_OUT"])
    own = unique_name("probe")
    record = {
        "worker": WORKER,
        "records": str(services.directory),
        "port": postgres_server.port,
        "root": str(postgres_server.root),
        "postmaster": (postgres_server.data / "postmaster.pid").read_text().split()[0],
        "own": own,
        "own_made": postgres_server.psql("postgres", f"CREATE DATABASE {own}").returncode,
        # every worker makes the same name: the server takes it once and refuses it after
        "same": postgres_server.psql("postgres", "CREATE DATABASE probe_same").stderr,
    }
    (out / f"{WORKER}.json").write_text(json.dumps(record))
    if WORKER == "gw1":
        os._exit(1)  # a worker that dies mid-run, its fixtures never torn down
"""


def test_workers_share_one_server_that_outlives_a_crash_and_ends_with_the_run(tmp_path: Path) -> None:
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # not this run's worker
    env.update(PYTHONPATH=str(ROOT), PROBE_OUT=str(out))
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q"),
            *("-n", "2", "--dist", "each", "--max-worker-restart", "0"),
            *("-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "--basetemp", str(tmp_path / "t")),
            str(tmp_path / "test_probe.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    records = [json.loads(path.read_text()) for path in sorted(out.glob("*.json"))]
    assert [r["worker"] for r in records] == ["gw0", "gw1"], run.stdout + run.stderr
    assert "crashed" in run.stdout and run.returncode == 1, run.stdout  # gw1 died, the run went on
    # one server: the same port and the same postmaster for both workers
    assert len({(r["port"], r["postmaster"], r["root"]) for r in records}) == 1
    # names of their own, both made; the shared name made once, then refused as existing
    assert len({r["own"] for r in records}) == 2 and [r["own_made"] for r in records] == [0, 0]
    refusals = sorted(r["same"] for r in records)
    # (at the same moment, the catalog's unique index refuses it: "Key (datname)=(probe_same) already exists")
    assert refusals[0] == "" and "probe_same" in refusals[1] and "already exists" in refusals[1], refusals
    # stopped once the run is over (by its watchdog), though neither worker stopped it
    postmaster, root = int(records[0]["postmaster"]), Path(records[0]["root"])
    deadline = time.monotonic() + 60
    # and its records, kept outside pytest's basetemp (pytest removes that when a run passes), with it
    (kept,) = {Path(r["records"]) for r in records}
    assert not kept.is_relative_to(tmp_path / "t")
    while runs_in(postmaster, root) or root.exists() or kept.exists():
        assert time.monotonic() < deadline, f"the run's PostgreSQL or its records outlived it: {root}, {kept}"
        time.sleep(0.1)
