"""Bounded children (traffic commands, nginx test/reload, command gates, git): one that times out
is killed with everything it started before the kit decides anything (issue 22: a traffic
command's background work set weight 100 after `resume` had reported the timeout)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline_kit._internal.proc import run_bounded
from pipeline_kit.errors import EnvironmentFailure
from pipeline_kit.traffic.command import CommandTraffic
from pipeline_kit.traffic.interface import Split
from pipeline_kit.traffic.nginx import NginxTraffic
from tests.conftest import Cli
from tests.test_gates import context, gate, run
from tests.test_rollout import second, with_rollout

__all__ = ["second"]  # the fixture, used here by name

SPLIT = Split("blue", "127.0.0.1:8001", "green", "127.0.0.1:8002", 100)


def late(marker: str, seconds: float = 2) -> str:
    """A command whose work goes on in a process it started (`apply-weight` in a script): the
    shell waits for it; what it started writes `marker` after `seconds` and records its pid."""
    return f"(sleep {seconds}; echo applied > {marker}) & echo $! > {marker}.pid; wait"


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead (init may reap it late)


def in_group(pgid: int) -> list[int]:
    """Live processes of process group `pgid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def dead(pid: int) -> bool:
    """`pid` and its process group are gone (SIGKILL is sent, not awaited: a moment to land)."""
    deadline = time.monotonic() + 1
    while (alive(pid) or in_group(pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid) and not in_group(pid)


def assert_nothing_left(directory: Path, marker: str, wait: float = 3.0) -> None:
    """What the timed-out command started is dead at once, and its work never happens."""
    assert dead(int((directory / f"{marker}.pid").read_text()))
    time.sleep(wait)
    assert not (directory / marker).exists()


def test_a_timed_out_command_and_all_it_started_are_dead_when_the_timeout_is_reported(tmp_path: Path) -> None:
    script = f"echo $$ > group; {late('marker')}"
    with pytest.raises(subprocess.TimeoutExpired):
        run_bounded(script, cwd=tmp_path, timeout=0.5)
    assert dead(int((tmp_path / "group").read_text()))
    assert_nothing_left(tmp_path, "marker")
    # a process left holding the output open past the deadline: the command has not finished
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_bounded("sleep 30 & echo $! > held.pid; exit 0", cwd=tmp_path, timeout=0.5)
    assert time.monotonic() - started < 3 and dead(int((tmp_path / "held.pid").read_text()))
    # after a normal exit, what the command left running on purpose is its business
    run_bounded("sleep 30 > /dev/null 2>&1 & echo $! > daemon.pid", cwd=tmp_path, timeout=10)
    daemon = int((tmp_path / "daemon.pid").read_text())
    try:
        assert alive(daemon)
    finally:
        os.kill(daemon, signal.SIGKILL)
    # a command that answers in time: its output, its exit status, its input
    done = run_bounded(["sh", "-c", "cat; echo oops >&2; exit 3"], cwd=tmp_path, timeout=10, input=b"in\r\n", text=True)
    assert (done.returncode, done.stdout, done.stderr) == (3, "in\n", "oops\n")


def test_a_traffic_command_that_times_out_sets_no_weight_afterwards(tmp_path: Path) -> None:
    traffic = CommandTraffic(late("weight"), tmp_path, timeout=0.5)
    with pytest.raises(EnvironmentFailure, match=r"^traffic command for weight 100: .*timed out after 0.5 seconds"):
        traffic.apply(SPLIT, {"PATH": "/usr/bin:/bin"})
    assert_nothing_left(tmp_path, "weight")


def test_an_nginx_test_that_times_out_leaves_nothing_running(tmp_path: Path) -> None:
    upstreams = tmp_path / "upstream.conf"
    upstreams.write_text("# before\n")
    nginx = NginxTraffic(upstreams, "pipeline_kit", late("tested"), "echo reloaded > reloaded", tmp_path, timeout=0.5)
    with pytest.raises(EnvironmentFailure, match=r"nginx config test: .*timed out.*the previous upstreams are back"):
        nginx.apply(SPLIT, {"PATH": "/usr/bin:/bin"})
    assert upstreams.read_text() == "# before\n" and not (tmp_path / "reloaded").exists()
    assert_nothing_left(tmp_path, "tested")


def test_a_command_gate_that_times_out_leaves_nothing_running(tmp_path: Path) -> None:
    command = late("gated")
    assert run(gate("command", run=command, timeout=0.3), context(tmp_path)) == (
        "error",
        f"{command}: timed out after 0.3s",
    )
    assert_nothing_left(tmp_path, "gated")


def test_resume_that_reports_a_traffic_timeout_never_applies_the_weight_later(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str]
) -> None:
    with_rollout(signed, [{"weight": 10, "pause": "manual"}, {"weight": 100}])
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    config_path = signed / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    # weight 100 takes the traffic API 2 s, done by a process the command started
    config["environments"]["dev"]["traffic"]["command"] = (
        'w="$PIPELINE_KIT_CANARY_WEIGHT"; if [ "$w" = 100 ]; then '
        '(sleep 2; echo "$w" >> weights.txt) & echo $! > late.pid; wait; else echo "$w" >> weights.txt; fi'
    )
    config["environments"]["dev"]["traffic"]["timeout"] = 0.5
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    resumed = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    assert resumed.code == 3, resumed.out + resumed.err
    assert re.search(r"^error: traffic command for weight 100: .* timed out after 0.5 seconds$", resumed.err, re.M)
    status = json.loads(cli(["rollout", "status", "--env", "dev", "--json"], cwd=signed).out)
    assert dead(int((signed / "late.pid").read_text()))
    time.sleep(3)
    assert "100" not in (signed / "weights.txt").read_text().splitlines()
    assert json.loads(cli(["rollout", "status", "--env", "dev", "--json"], cwd=signed).out) == status


def test_an_interrupted_kit_leaves_no_bounded_command_behind(tmp_path: Path) -> None:
    # In a session of its own the command no longer gets the terminal's Ctrl-C: the kit kills it.
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            run_bounded(late("marker"), cwd=tmp_path, timeout=30)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert_nothing_left(tmp_path, "marker")


def test_a_cancelled_job_leaves_no_bounded_command_behind(signed: Path, policy: list[str]) -> None:
    # a CI runner cancels the job with SIGTERM to the kit; the gate command, in a session of its
    # own, would not get it: the kit kills it on the way out
    config_path = signed / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["environments"]["dev"]["gates"].append({"command": {"run": "touch started; " + late("gated")}})
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_"))}
    job = subprocess.Popen([sys.executable, "-m", "pipeline_kit", "plan", "--to", "dev", *policy], cwd=signed, env=env)
    deadline = time.monotonic() + 60
    while not (signed / "gated.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=30) == 128 + signal.SIGTERM
    assert_nothing_left(signed, "gated")
